// RUN: m2c-opt %s | FileCheck %s
// RUN: m2c-opt %s | m2c-opt | FileCheck %s
// RUN: m2c-opt %s --mlir-print-op-generic | m2c-opt | FileCheck %s

!cache = !attn.kv_cache<layers = 62, kv_heads = 8, head_dim = 128, block_size = 16, dtype = bf16>

// CHECK-LABEL: func.func @gqa
// CHECK: attn.gqa %{{.*}}, %{{.*}}, %{{.*}} positions(%{{.*}}) seqs(%{{.*}}) cache(%{{.*}}[%{{.*}}]) {causal = true, head_dim = 128 : i64, layer = 61 : i64, num_heads = 48 : i64, num_kv_heads = 8 : i64, rope_theta = 5.000000e+06 : f64, rotary_dim = 64 : i64}
// CHECK-SAME: !attn.kv_cache<layers = 62, kv_heads = 8, head_dim = 128, block_size = 16, dtype = bf16>
func.func @gqa(%q: tensor<?x6144xf32>, %k: tensor<?x1024xf32>, %v: tensor<?x1024xf32>,
               %pos: tensor<?xi32>, %seqs: tensor<?xi32>, %kv: !cache,
               %tables: tensor<?x?xi32>) -> tensor<?x6144xf32> {
  %o = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%tables])
         {layer = 61 : i64, num_heads = 48 : i64, num_kv_heads = 8 : i64, head_dim = 128 : i64,
          rotary_dim = 64 : i64, rope_theta = 5.0e+06 : f64, causal = true}
         : tensor<?x6144xf32>, tensor<?x1024xf32>, tensor<?x1024xf32>, tensor<?xi32>,
           tensor<?xi32>, !cache, tensor<?x?xi32> -> tensor<?x6144xf32>
  return %o : tensor<?x6144xf32>
}

// The op writes the cache: even unused, it survives canonicalization and CSE.
// RUN: m2c-opt %s --canonicalize --cse | FileCheck %s --check-prefix=EFFECT
// EFFECT-LABEL: func.func @unused_result
// EFFECT-COUNT-2: attn.gqa
func.func @unused_result(%q: tensor<1x64xf32>, %k: tensor<1x32xf32>, %v: tensor<1x32xf32>,
                         %pos: tensor<1xi32>, %seqs: tensor<1xi32>,
                         %kv: !attn.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, block_size = 4, dtype = f32>,
                         %tables: tensor<1x8xi32>) {
  %0 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%tables])
         {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 32 : i64,
          rotary_dim = 32 : i64, rope_theta = 1.0e+04 : f64, causal = true}
         : tensor<1x64xf32>, tensor<1x32xf32>, tensor<1x32xf32>, tensor<1xi32>, tensor<1xi32>,
           !attn.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, block_size = 4, dtype = f32>,
           tensor<1x8xi32> -> tensor<1x64xf32>
  %1 = attn.gqa %q, %k, %v positions(%pos) seqs(%seqs) cache(%kv[%tables])
         {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 32 : i64,
          rotary_dim = 32 : i64, rope_theta = 1.0e+04 : f64, causal = true}
         : tensor<1x64xf32>, tensor<1x32xf32>, tensor<1x32xf32>, tensor<1xi32>, tensor<1xi32>,
           !attn.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, block_size = 4, dtype = f32>,
           tensor<1x8xi32> -> tensor<1x64xf32>
  return
}
