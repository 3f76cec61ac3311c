// RUN: m2c-opt %s --m2c-fuse-qk-norm --split-input-file | FileCheck %s
// RUN: m2c-opt %s --split-input-file | FileCheck %s --check-prefix=NOPASS

// CHECK-LABEL: func.func @fold
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<?x64xf32>, %[[K:[^:]*]]: tensor<?x32xf32>
// CHECK-NOT: norm.rms
// CHECK: attn.gqa %[[Q]], %[[K]], %{{.*}} qk_norm(%{{.*}}, %{{.*}} : tensor<64xbf16>, tensor<32xbf16>) {{.*}}qk_norm_eps = 9.9999999999999995E-7 : f64
// NOPASS-LABEL: func.func @fold
// NOPASS-COUNT-2: norm.rms
// NOPASS-NOT: qk_norm(
func.func @fold(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>, %wq: tensor<64xbf16>, %wk: tensor<32xbf16>,
                %pos: tensor<?xi32>, %seqs: tensor<?xi32>,
                %kv: !attn.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, block_size = 4, dtype = f32>,
                %tables: tensor<?x?xi32>) -> tensor<?x64xf32> {
  %qn = norm.rms %q, %wq eps = 1.0e-06 : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  %kn = norm.rms %k, %wk eps = 1.0e-06 : (tensor<?x32xf32>, tensor<32xbf16>) -> tensor<?x32xf32>
  %o = attn.gqa %qn, %kn, %v positions(%pos) seqs(%seqs) cache(%kv[%tables])
         {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 32 : i64,
          rotary_dim = 16 : i64, rope_theta = 1.0e+04 : f64, causal = true}
         : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>, tensor<?xi32>,
           !attn.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, block_size = 4, dtype = f32>,
           tensor<?x?xi32> -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Only the queries are normalised: nothing to fold.
// CHECK-LABEL: func.func @queries_only
// CHECK: norm.rms
// CHECK-NOT: qk_norm(
func.func @queries_only(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>, %wq: tensor<64xbf16>,
                        %pos: tensor<?xi32>, %seqs: tensor<?xi32>,
                        %kv: !attn.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, block_size = 4, dtype = f32>,
                        %tables: tensor<?x?xi32>) -> tensor<?x64xf32> {
  %qn = norm.rms %q, %wq eps = 1.0e-06 : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  %o = attn.gqa %qn, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%tables])
         {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 32 : i64,
          rotary_dim = 16 : i64, rope_theta = 1.0e+04 : f64, causal = true}
         : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>, tensor<?xi32>,
           !attn.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, block_size = 4, dtype = f32>,
           tensor<?x?xi32> -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// The normalised keys are used elsewhere: folding would drop that use.
// CHECK-LABEL: func.func @shared
// CHECK-COUNT-2: norm.rms
// CHECK-NOT: qk_norm(
func.func @shared(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>, %wq: tensor<64xbf16>, %wk: tensor<32xbf16>,
                  %pos: tensor<?xi32>, %seqs: tensor<?xi32>,
                  %kv: !attn.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, block_size = 4, dtype = f32>,
                  %tables: tensor<?x?xi32>) -> (tensor<?x64xf32>, tensor<?x32xf32>) {
  %qn = norm.rms %q, %wq eps = 1.0e-06 : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  %kn = norm.rms %k, %wk eps = 1.0e-06 : (tensor<?x32xf32>, tensor<32xbf16>) -> tensor<?x32xf32>
  %o = attn.gqa %qn, %kn, %v positions(%pos) seqs(%seqs) cache(%kv[%tables])
         {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 32 : i64,
          rotary_dim = 16 : i64, rope_theta = 1.0e+04 : f64, causal = true}
         : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>, tensor<?xi32>,
           !attn.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, block_size = 4, dtype = f32>,
           tensor<?x?xi32> -> tensor<?x64xf32>
  return %o, %kn : tensor<?x64xf32>, tensor<?x32xf32>
}
