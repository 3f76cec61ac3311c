//===- AttnDialect.td - The attn dialect: attention over a paged KV cache -===//

#ifndef M2C_DIALECTS_ATTN_ATTNDIALECT_TD
#define M2C_DIALECTS_ATTN_ATTNDIALECT_TD

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/OpBase.td"

def Attn_Dialect : Dialect {
  let name = "attn";
  let cppNamespace = "::m2c::attn";
  let summary = "Grouped-query attention over a paged KV cache";
  let description = [{
    The `attn` dialect holds attention with its KV cache. The cache is an SSA
    value of type `!attn.kv_cache`; ops that append to it declare a write
    effect on it, so they are never reordered, folded or erased.
  }];
  let useDefaultTypePrinterParser = 1;
}

def Attn_KvCacheType : TypeDef<Attn_Dialect, "KvCache"> {
  let mnemonic = "kv_cache";
  let summary = "The paged KV cache of every layer of a model";
  let description = [{
    The runtime owns the storage: `layers x num_blocks x block_size x 2 x
    kv_heads x head_dim` elements of `dtype`. The number of blocks is chosen
    at run time; everything else is fixed at compile time and checked by the
    runtime when it loads an artifact.

    ```mlir
    !attn.kv_cache<layers = 62, kv_heads = 8, head_dim = 128, block_size = 16, dtype = bf16>
    ```
  }];
  let parameters = (ins
    "int64_t":$layers,
    "int64_t":$kv_heads,
    "int64_t":$head_dim,
    "int64_t":$block_size,
    "::mlir::Type":$dtype
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

class Attn_Op<string mnemonic, list<Trait> traits = []>
    : Op<Attn_Dialect, mnemonic, traits>;

#endif // M2C_DIALECTS_ATTN_ATTNDIALECT_TD
