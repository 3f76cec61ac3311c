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

def Norm_AddRmsOp : Norm_Op<"add_rms", [Pure]> {
  let summary = "Residual add fused with the RMS normalisation of the sum";
  let description = [{
    `sum = input + residual`, `result = rms(sum) * weight` (as `norm.rms`).
    Both are results: the sum is the residual stream the next layer adds
    to, the normalised value feeds the next projection. Produced by
    `m2c-fuse-add-rmsnorm` from an `arith.addf` feeding a `norm.rms`; one
    kernel reads the two inputs once instead of writing and re-reading the
    sum.

    ```mlir
    %sum, %h = norm.add_rms %x, %delta, %w eps = 1.0e-06
        : (tensor<?x3072xf32>, tensor<?x3072xf32>, tensor<3072xbf16>) -> (tensor<?x3072xf32>, tensor<?x3072xf32>)
    ```
  }];
  let arguments = (ins
    RankedTensorOf<[AnyFloat]>:$input,
    RankedTensorOf<[AnyFloat]>:$residual,
    RankedTensorOf<[AnyFloat]>:$weight,
    F64Attr:$eps
  );
  let results = (outs RankedTensorOf<[AnyFloat]>:$sum, RankedTensorOf<[AnyFloat]>:$result);
  let assemblyFormat = [{
    $input `,` $residual `,` $weight `eps` `=` $eps attr-dict `:`
    `(` type($input) `,` type($residual) `,` type($weight) `)` `->`
    `(` type($sum) `,` type($result) `)`
  }];
  let hasVerifier = 1;
}

#endif // M2C_DIALECTS_NORM_NORMOPS_TD
