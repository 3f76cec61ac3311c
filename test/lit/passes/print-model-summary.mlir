// RUN: m2c-opt %s --m2c-print-model-summary -o /dev/null | FileCheck %s

// CHECK: model: minimax_m2
// CHECK-NEXT: weights: 2 symbols, 40 parameters, 80 B
// CHECK-NEXT: entry @decode: attn.gqa=0 moe.route=0 moe.norm_route=0 moe.experts=0 norm.rms=2 norm.add_rms=0 norm.rms_logits=0 linalg.matmul=0 tensor.gather=0
// CHECK-NOT: entry @helper
module attributes {m2c.model_type = "minimax_m2"} {
  ml_program.global private @a(#ml_program.extern : tensor<4x8xbf16>) : tensor<4x8xbf16>
  ml_program.global private @b(#ml_program.extern : tensor<8xbf16>) : tensor<8xbf16>
  func.func @decode(%x: tensor<?x8xf32>) -> tensor<?x8xf32> attributes {m2c.entry = "decode"} {
    %w = ml_program.global_load_const @b : tensor<8xbf16>
    %0 = norm.rms %x, %w eps = 1.0e-06 : (tensor<?x8xf32>, tensor<8xbf16>) -> tensor<?x8xf32>
    %1 = norm.rms %0, %w eps = 1.0e-06 : (tensor<?x8xf32>, tensor<8xbf16>) -> tensor<?x8xf32>
    return %1 : tensor<?x8xf32>
  }
  func.func @helper(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    return %x : tensor<?x8xf32>
  }
}
