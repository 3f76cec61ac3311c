//===- MoeOps.td - moe dialect operations ------------------*- tablegen -*-===//

#ifndef M2C_DIALECTS_MOE_MOEOPS_TD
#define M2C_DIALECTS_MOE_MOEOPS_TD

include "dialects/moe/MoeDialect.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Moe_RouteOp : Moe_Op<"route", [Pure]> {
  let summary = "Scores experts per token and selects the top-k";
  let description = [{
    `scores = scoring(hidden @ gate_weight^T)` in fp32 (`gate_weight` is
    `[num_experts, hidden]`). The top-k experts are chosen on
    `scores + correction_bias` when the bias is present; the bias only
    chooses, it never weights. The weights are the unbiased scores of the
    chosen experts, divided by their sum when `renormalize` is set. Ties
    choose the lower expert id.

    ```mlir
    %ids, %weights = moe.route %h, %gate bias(%bias : tensor<256xf32>)
        {scoring = #moe.scoring<sigmoid>, top_k = 8 : i64, num_experts = 256 : i64,
         renormalize = true}
        : tensor<?x3072xf32>, tensor<256x3072xbf16> -> tensor<?x8xi32>, tensor<?x8xf32>
    ```
  }];
  let arguments = (ins
    RankedTensorOf<[AnyFloat]>:$hidden,
    RankedTensorOf<[AnyFloat]>:$gate_weight,
    Optional<RankedTensorOf<[AnyFloat]>>:$correction_bias,
    Moe_ScoringFuncAttr:$scoring,
    I64Attr:$top_k,
    I64Attr:$num_experts,
    BoolAttr:$renormalize
  );
  let results = (outs
    RankedTensorOf<[I32]>:$expert_ids,
    RankedTensorOf<[F32]>:$expert_weights
  );
  let assemblyFormat = [{
    $hidden `,` $gate_weight (`bias` `(` $correction_bias^ `:` type($correction_bias) `)`)?
    attr-dict `:` type($hidden) `,` type($gate_weight) `->` type($expert_ids) `,`
    type($expert_weights)
  }];
  let hasVerifier = 1;
}

def Moe_NormRouteOp : Moe_Op<"norm_route", [Pure]> {
  let summary = "Residual add and RMSNorm, then moe.route on the normalised rows";
  let description = [{
    `sum = input + residual` and `hidden = rms(sum) * norm_weight` (as
    `norm.add_rms`), then `expert_ids, expert_weights` as `moe.route` of
    `hidden`. All four are results: `sum` is the residual stream and
    `hidden` feeds `moe.experts`. Produced by `m2c-fuse-norm-route` from a
    `norm.add_rms` whose normalised result a `moe.route` reads: the router
    works on one token per block anyway, so the norm becomes its prologue
    and the decode layer loses a kernel.

    ```mlir
    %sum, %h, %ids, %weights = moe.norm_route %x, %delta, %norm, %gate
        bias(%bias : tensor<256xf32>) eps = 1.0e-06
        {scoring = #moe.scoring<sigmoid>, top_k = 8 : i64, num_experts = 256 : i64,
         renormalize = true}
        : (tensor<?x3072xf32>, tensor<?x3072xf32>, tensor<3072xbf16>, tensor<256x3072xbf16>)
        -> (tensor<?x3072xf32>, tensor<?x3072xf32>, tensor<?x8xi32>, tensor<?x8xf32>)
    ```
  }];
  let arguments = (ins
    RankedTensorOf<[AnyFloat]>:$input,
    RankedTensorOf<[AnyFloat]>:$residual,
    RankedTensorOf<[AnyFloat]>:$norm_weight,
    RankedTensorOf<[AnyFloat]>:$gate_weight,
    Optional<RankedTensorOf<[AnyFloat]>>:$correction_bias,
    F64Attr:$eps,
    Moe_ScoringFuncAttr:$scoring,
    I64Attr:$top_k,
    I64Attr:$num_experts,
    BoolAttr:$renormalize
  );
  let results = (outs
    RankedTensorOf<[AnyFloat]>:$sum,
    RankedTensorOf<[AnyFloat]>:$hidden,
    RankedTensorOf<[I32]>:$expert_ids,
    RankedTensorOf<[F32]>:$expert_weights
  );
  let assemblyFormat = [{
    $input `,` $residual `,` $norm_weight `,` $gate_weight
    (`bias` `(` $correction_bias^ `:` type($correction_bias) `)`)? `eps` `=` $eps attr-dict `:`
    `(` type($input) `,` type($residual) `,` type($norm_weight) `,` type($gate_weight) `)` `->`
    `(` type($sum) `,` type($hidden) `,` type($expert_ids) `,` type($expert_weights) `)`
  }];
  let hasVerifier = 1;
}

def Moe_ExpertsOp : Moe_Op<"experts", [Pure]> {
  let summary = "Grouped SwiGLU experts over the selected experts, combined";
  let description = [{
    For each token `t` and each of its `k` selections `e = expert_ids[t, j]`:
    `y_j = down[e] @ (silu(gate[e] @ x_t) * (up[e] @ x_t))`, and the result
    row is `sum_j expert_weights[t, j] * y_j`, plus `residual[t]` when the
    optional residual is given. `gate`/`up` are the checkpoint's `w1`/`w3`
    (`[experts, intermediate, hidden]`), `down` is `w2` (`[experts, hidden,
    intermediate]`). The frontend leaves the residual add outside;
    `m2c-fuse-moe-residual` folds it in.

    ```mlir
    %y = moe.experts %h, %ids, %weights, %w1, %w3, %w2
        : tensor<?x3072xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<256x1536x3072xbf16>,
          tensor<256x1536x3072xbf16>, tensor<256x3072x1536xbf16> -> tensor<?x3072xf32>
    ```
  }];
  let arguments = (ins
    RankedTensorOf<[AnyFloat]>:$hidden,
    RankedTensorOf<[I32]>:$expert_ids,
    RankedTensorOf<[F32]>:$expert_weights,
    RankedTensorOf<[AnyFloat]>:$gate_proj,
    RankedTensorOf<[AnyFloat]>:$up_proj,
    RankedTensorOf<[AnyFloat]>:$down_proj,
    Optional<RankedTensorOf<[AnyFloat]>>:$residual
  );
  let results = (outs RankedTensorOf<[AnyFloat]>:$result);
  let assemblyFormat = [{
    $hidden `,` $expert_ids `,` $expert_weights `,` $gate_proj `,` $up_proj `,` $down_proj
    (`residual` `(` $residual^ `:` type($residual) `)`)?
    attr-dict `:` type($hidden) `,` type($expert_ids) `,` type($expert_weights) `,`
    type($gate_proj) `,` type($up_proj) `,` type($down_proj) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // M2C_DIALECTS_MOE_MOEOPS_TD
