// RUN: m2c-opt %s --m2c-quantize-weights="experts=int4 attn=int8 lm-head=fp8" | FileCheck %s
// RUN: m2c-opt %s --m2c-quantize-weights | FileCheck %s --check-prefix=DEFAULT
// RUN: not m2c-opt %s --m2c-quantize-weights="experts=int3" 2>&1 | FileCheck %s --check-prefix=BAD

// The checkpoint keeps lm_head and the router unquantized.
module attributes {m2c.modules_to_not_convert = ["gate", "lm_head"]} {
  // CHECK: @model.layers.0.self_attn.q_proj.weight({{.*}}) : tensor<8x4xbf16> {m2c.checkpoint = "model.layers.0.self_attn.q_proj.weight", m2c.quantization = "int8"}
  ml_program.global private @model.layers.0.self_attn.q_proj.weight(#ml_program.extern : tensor<8x4xbf16>) : tensor<8x4xbf16> {m2c.checkpoint = "model.layers.0.self_attn.q_proj.weight"}
  // CHECK: @model.layers.0.block_sparse_moe.experts.w1({{.*}}) : tensor<2x8x4xbf16> {m2c.checkpoint = "model.layers.0.block_sparse_moe.experts.{e}.w1.weight", m2c.quantization = "int4_g128"}
  ml_program.global private @model.layers.0.block_sparse_moe.experts.w1(#ml_program.extern : tensor<2x8x4xbf16>) : tensor<2x8x4xbf16> {m2c.checkpoint = "model.layers.0.block_sparse_moe.experts.{e}.w1.weight"}
  // Not in any class: norms and the router gate.
  // CHECK: @model.layers.0.input_layernorm.weight({{.*}}) : tensor<4xbf16>{{$}}
  ml_program.global private @model.layers.0.input_layernorm.weight(#ml_program.extern : tensor<4xbf16>) : tensor<4xbf16>
  // CHECK: @model.layers.0.block_sparse_moe.gate.weight({{.*}}) : tensor<2x4xbf16> {m2c.checkpoint = "model.layers.0.block_sparse_moe.gate.weight"}
  ml_program.global private @model.layers.0.block_sparse_moe.gate.weight(#ml_program.extern : tensor<2x4xbf16>) : tensor<2x4xbf16> {m2c.checkpoint = "model.layers.0.block_sparse_moe.gate.weight"}
  // lm-head=fp8 is asked for, but modules_to_not_convert wins.
  // CHECK: @lm_head.weight({{.*}}) : tensor<16x4xbf16> {m2c.checkpoint = "lm_head.weight"}
  ml_program.global private @lm_head.weight(#ml_program.extern : tensor<16x4xbf16>) : tensor<16x4xbf16> {m2c.checkpoint = "lm_head.weight"}
}

// DEFAULT-NOT: m2c.quantization
// BAD: error: m2c-quantize-weights: option experts=int3 is not one of none, int8, int4, fp8
