//===- NormOps.td - norm dialect operations ----------------*- tablegen -*-===//

#ifndef M2C_DIALECTS_NORM_NORMOPS_TD
#define M2C_DIALECTS_NORM_NORMOPS_TD

include "dialects/norm/NormDialect.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Norm_RmsOp : Norm_Op<"rms", [Pure]> {
  let summary = "RMS normalisation of the last dimension, scaled by a weight";
  let description = [{
    Computes `result = input * rsqrt(mean(input^2, last dim) + eps) * weight`
    with the mean and rsqrt in fp32 and no `+1` offset on the weight.

    The normalised dimension is always the last one. MiniMax-M2's QK-norm
    (`qk_norm_type = "per_layer"`) normalises all heads together, so it is
    this op on the `[tokens, heads * head_dim]` projection, before the head
    split; there is no per-head variant.

    Example:

    ```mlir
    %h = norm.rms %x, %w eps = 1.0e-06 : (tensor<?x3072xf32>, tensor<3072xbf16>) -> tensor<?x3072xf32>
    ```
  }];
  let arguments = (ins
    RankedTensorOf<[AnyFloat]>:$input,
    RankedTensorOf<[AnyFloat]>:$weight,
    F64Attr:$eps
  );
  let results = (outs RankedTensorOf<[AnyFloat]>:$result);
  let assemblyFormat = [{
    $input `,` $weight `eps` `=` $eps attr-dict `:`
    `(` type($input) `,` type($weight) `)` `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // M2C_DIALECTS_NORM_NORMOPS_TD
