//===- AttnOps.td - attn dialect operations ----------------*- tablegen -*-===//

#ifndef M2C_DIALECTS_ATTN_ATTNOPS_TD
#define M2C_DIALECTS_ATTN_ATTNOPS_TD

include "dialects/attn/AttnDialect.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Attn_GqaOp : Attn_Op<"gqa", [AttrSizedOperandSegments]> {
  let summary = "RoPE, KV-cache append and grouped-query attention";
  let description = [{
    For each token `t` (a row of the flattened batch) this op:

    1. applies partial NeoX-style RoPE at `positions[t]` to dims
       `[0, rotary_dim)` of every query and key head: pairs
       `(i, i + rotary_dim/2)`, angle `pos * rope_theta^(-2i/rotary_dim)`;
    2. writes the rotated key and the value into layer `layer` of `cache`,
       at position `positions[t]` of sequence `token_seqs[t]`, whose blocks
       are row `token_seqs[t]` of `block_tables`;
    3. attends: `softmax(q k^T / sqrt(head_dim))` over that sequence's
       positions `<= positions[t]` when `causal` (else all cached
       positions), query head `h` reading KV head `h / (num_heads /
       num_kv_heads)`.

    With the optional `qk_norm(%wq, %wk)` operands (made by
    `m2c-fuse-qk-norm`), step 1 is preceded by MiniMax-M2's per-layer
    QK-norm: RMS over all heads of the token's query (and key) row, times
    the weight, with `qk_norm_eps`, so normalisation, RoPE and the cache
    write are one kernel.

    Prefill (a chunk of one sequence) and decode (one token for each of a
    batch of sequences) are the same op with different `token_seqs`, which
    is also what mixes them in one continuous batch.

    One op rather than separate rope / append / attention ops: every kernel
    plan we target fuses RoPE with the cache write and reads the cache in
    the attention kernel, and the op's write effect on `cache` keeps the
    three steps ordered. A pass can still split it where that pays.

    ```mlir
    %o = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%tables])
           {layer = 0 : i64, num_heads = 48 : i64, num_kv_heads = 8 : i64,
            head_dim = 128 : i64, rotary_dim = 64 : i64, rope_theta = 5.0e+06 : f64,
            causal = true}
           : tensor<?x6144xf32>, tensor<?x1024xf32>, tensor<?x1024xf32>, tensor<?xi32>,
             tensor<?xi32>, !attn.kv_cache<layers = 62, kv_heads = 8, head_dim = 128,
             block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x6144xf32>
    ```
  }];
  let arguments = (ins
    RankedTensorOf<[AnyFloat]>:$queries,
    RankedTensorOf<[AnyFloat]>:$keys,
    RankedTensorOf<[AnyFloat]>:$values,
    RankedTensorOf<[I32]>:$positions,
    RankedTensorOf<[I32]>:$token_seqs,
    Arg<Attn_KvCacheType, "the paged KV cache", [MemRead, MemWrite]>:$cache,
    RankedTensorOf<[I32]>:$block_tables,
    Optional<RankedTensorOf<[AnyFloat]>>:$q_norm,
    Optional<RankedTensorOf<[AnyFloat]>>:$k_norm,
    I64Attr:$layer,
    I64Attr:$num_heads,
    I64Attr:$num_kv_heads,
    I64Attr:$head_dim,
    I64Attr:$rotary_dim,
    F64Attr:$rope_theta,
    BoolAttr:$causal,
    OptionalAttr<F64Attr>:$qk_norm_eps
  );
  let results = (outs RankedTensorOf<[AnyFloat]>:$result);
  let assemblyFormat = [{
    $queries `,` $keys `,` $values `positions` `(` $positions `)`
    `seqs` `(` $token_seqs `)` `cache` `(` $cache `[` $block_tables `]` `)`
    (`qk_norm` `(` $q_norm^ `,` $k_norm `:` type($q_norm) `,` type($k_norm) `)`)?
    attr-dict `:` type($queries) `,` type($keys) `,` type($values) `,`
    type($positions) `,` type($token_seqs) `,` qualified(type($cache)) `,`
    type($block_tables) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // M2C_DIALECTS_ATTN_ATTNOPS_TD
