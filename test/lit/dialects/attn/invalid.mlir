// RUN: m2c-opt %s -split-input-file -verify-diagnostics

// One case per verifier branch of attn.gqa and !attn.kv_cache.

func.func @nonpositive_heads(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects positive num_heads, num_kv_heads and head_dim, got 0, 2, 32}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 0 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @heads_multiple(%q: tensor<?x1536xf32>, %k: tensor<?x160xf32>, %v: tensor<?x160xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 5, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects num_heads (48) to be a multiple of num_kv_heads (5)}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 48 : i64, num_kv_heads = 5 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x1536xf32>, tensor<?x160xf32>, tensor<?x160xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 5, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x1536xf32>
  return
}

// -----

func.func @rotary_odd(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects rotary_dim (15) to be even and non-negative}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 15 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @rotary_too_large(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects rotary_dim (64) to be at most head_dim (32)}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 64 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @rope_theta(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects a positive rope_theta, got -1}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = -1.0 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @queries_rank(%q: tensor<?x4x32xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects queries of rank 2 [tokens, heads * head_dim], got 'tensor<?x4x32xf32>'}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x4x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x4x32xf32>
  return
}

// -----

func.func @queries_width(%q: tensor<?x96xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects queries to have 128 columns, got 96}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x96xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x96xf32>
  return
}

// -----

func.func @keys_width(%q: tensor<?x128xf32>, %k: tensor<?x32xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects keys to have 64 columns, got 32}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x32xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @values_width(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x128xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects values to have 64 columns, got 128}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x128xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @token_mismatch(%q: tensor<4x128xf32>, %k: tensor<3x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects queries, keys and values to have the same number of tokens, got 4 and 3}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<4x128xf32>, tensor<3x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<4x128xf32>
  return
}

// -----

func.func @positions_rank(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?x1xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects rank-1 positions and seqs, got 'tensor<?x1xi32>' and 'tensor<?xi32>'}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x1xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @positions_count(%q: tensor<4x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<5xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects one position and one seq per token (4), got 5}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<4x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<5xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<4x128xf32>
  return
}

// -----

func.func @seqs_count(%q: tensor<4x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<2xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects one position and one seq per token (4), got 2}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<4x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<2xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<4x128xf32>
  return
}

// -----

func.func @tables_rank(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects block_tables of rank 2 [seqs, blocks], got 'tensor<?xi32>'}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @cache_mismatch(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects the cache's kv_heads x head_dim (2 x 64) to match num_kv_heads x head_dim (2 x 32)}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @layer_range(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects layer (2) to index one of the cache's 2 layers}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 2 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @result_type(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{'attn.gqa' op expects the result type 'tensor<?x128xbf16>' to equal the queries type 'tensor<?x128xf32>'}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xbf16>
  return
}

// -----

// expected-error @+1 {{expects positive layers, kv_heads, head_dim and block_size, got 2, 2, 32, 0}}
func.func @cache_block_size(%kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 0, dtype = bf16>)

// -----

// expected-error @+1 {{expects a float dtype, got 'i8'}}
func.func @cache_dtype(%kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = i8>)

// -----

func.func @qk_norm_without_eps(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>, %wq: tensor<128xbf16>, %wk: tensor<64xbf16>) {
  // expected-error @+1 {{'attn.gqa' op expects q_norm, k_norm and qk_norm_eps together or not at all}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) qk_norm(%wq, %wk : tensor<128xbf16>, tensor<64xbf16>) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @eps_without_qk_norm(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>, %wq: tensor<128xbf16>, %wk: tensor<64xbf16>) {
  // expected-error @+1 {{'attn.gqa' op expects q_norm, k_norm and qk_norm_eps together or not at all}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true, qk_norm_eps = 1.0e-06 : f64} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @qk_norm_shape(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>, %wq: tensor<64xbf16>, %wk: tensor<64xbf16>) {
  // expected-error @+1 {{'attn.gqa' op expects QK-norm weights of shapes [128] and [64], got 'tensor<64xbf16>' and 'tensor<64xbf16>'}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) qk_norm(%wq, %wk : tensor<64xbf16>, tensor<64xbf16>) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true, qk_norm_eps = 1.0e-06 : f64} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}

// -----

func.func @qk_norm_eps(%q: tensor<?x128xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, %t: tensor<?x?xi32>, %wq: tensor<128xbf16>, %wk: tensor<64xbf16>) {
  // expected-error @+1 {{'attn.gqa' op expects a positive qk_norm_eps}}
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%t]) qk_norm(%wq, %wk : tensor<128xbf16>, tensor<64xbf16>) {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, rotary_dim = 16 : i64, rope_theta = 5.0e+06 : f64, causal = true, qk_norm_eps = 0.0 : f64} : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>, !attn.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, block_size = 16, dtype = bf16>, tensor<?x?xi32> -> tensor<?x128xf32>
  return
}
