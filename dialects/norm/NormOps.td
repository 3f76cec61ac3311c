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

def Norm_RmsLogitsOp : Norm_Op<"rms_logits", [Pure]> {
  let summary = "Final RMSNorm, lm_head projection and each row's greedy argmax";
  let description = [{
    `logits = (rms(h) * norm_weight) lm_head^T` in fp32 with `h = input`,
    or `h = input + residual` (as `norm.rms` or `norm.add_rms`, then the
    `linalg.matmul` of the projection), and `greedy_ids[t, 0]` = the index
    of row t's largest logit, the lowest index on ties; -1 when the row
    holds a NaN or +inf, or only -inf (nothing can be chosen). Produced by
    `m2c-fuse-decode-tail` from the norm and projection an entry point
    returns: the step ends in one kernel, and a greedy step copies one id
    per token to the host instead of a row of logits.

    With `candidates`, two more results hold each row's K best logits, best
    first (larger logit, then the lower index; -0 as +0): their indices
    `i32 [T, K]` and values `f32 [T, K]`, K <= vocab. A sampled step with
    top-k <= K copies those instead of the row (docs/sampling.md).

    ```mlir
    %logits, %ids = norm.rms_logits %x, %norm, %lm_head residual(%r : tensor<?x3072xf32>)
        eps = 1.0e-06 : (tensor<?x3072xf32>, tensor<3072xbf16>, tensor<200064x3072xbf16>)
        -> (tensor<?x200064xf32>, tensor<?x1xi32>)
    %logits, %ids, %top_ids, %top_logits = norm.rms_logits %x, %norm, %lm_head
        eps = 1.0e-06 : (tensor<?x3072xf32>, tensor<3072xbf16>, tensor<200064x3072xbf16>)
        -> (tensor<?x200064xf32>, tensor<?x1xi32>, tensor<?x64xi32>, tensor<?x64xf32>)
    ```
  }];
  let arguments = (ins
    RankedTensorOf<[F32]>:$input,
    RankedTensorOf<[AnyFloat]>:$norm_weight,
    RankedTensorOf<[AnyFloat]>:$lm_head,
    Optional<RankedTensorOf<[F32]>>:$residual,
    F64Attr:$eps
  );
  let results = (outs RankedTensorOf<[F32]>:$logits, RankedTensorOf<[I32]>:$greedy_ids,
                      Variadic<RankedTensorOf<[I32, F32]>>:$candidates);
  let assemblyFormat = [{
    $input `,` $norm_weight `,` $lm_head
    (`residual` `(` $residual^ `:` type($residual) `)`)? `eps` `=` $eps attr-dict `:`
    `(` type($input) `,` type($norm_weight) `,` type($lm_head) `)` `->`
    `(` type($logits) `,` type($greedy_ids) (`,` type($candidates)^)? `)`
  }];
  let hasVerifier = 1;
}

#endif // M2C_DIALECTS_NORM_NORMOPS_TD
