// RUN: m2c-opt %s --m2c-fuse-projections --split-input-file --verify-diagnostics | FileCheck %s

// q, k and v read the same value: one matmul over a [q+k+v, K] weight that
// lists its parts, then one column slice per former result. The parts'
// globals go once nothing loads them; two entry points share the fused one.
#mq = affine_map<(m, n, k) -> (m, k)>
#mw = affine_map<(m, n, k) -> (n, k)>
#mo = affine_map<(m, n, k) -> (m, n)>
module {
  // CHECK-NOT: @l0.q_proj.weight
  // CHECK: ml_program.global private @l0.qkv_proj.weight({{.*}}) : tensor<16x4xbf16> {m2c.checkpoint_parts = ["ckpt.q_proj.weight", "ckpt.k_proj.weight", "ckpt.v_proj.weight"], m2c.part_rows = array<i64: 8, 4, 4>, m2c.quantization = "int8"}
  // CHECK-NOT: @l0.k_proj.weight
  // CHECK-NOT: @l0.v_proj.weight
  ml_program.global private @l0.q_proj.weight(#ml_program.extern : tensor<8x4xbf16>) : tensor<8x4xbf16> {m2c.checkpoint = "ckpt.q_proj.weight", m2c.quantization = "int8"}
  ml_program.global private @l0.k_proj.weight(#ml_program.extern : tensor<4x4xbf16>) : tensor<4x4xbf16> {m2c.checkpoint = "ckpt.k_proj.weight", m2c.quantization = "int8"}
  ml_program.global private @l0.v_proj.weight(#ml_program.extern : tensor<4x4xbf16>) : tensor<4x4xbf16> {m2c.checkpoint = "ckpt.v_proj.weight", m2c.quantization = "int8"}
  // o reads another value: left alone.
  // CHECK: ml_program.global private @l0.o_proj.weight
  ml_program.global private @l0.o_proj.weight(#ml_program.extern : tensor<4x8xbf16>) : tensor<4x8xbf16>

  // CHECK-LABEL: func.func @decode
  func.func @decode(%h: tensor<?x4xf32>, %a: tensor<?x8xf32>, %t: index) -> (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) {
    // CHECK: %[[W:.*]] = ml_program.global_load_const @l0.qkv_proj.weight : tensor<16x4xbf16>
    // CHECK: %[[E:.*]] = tensor.empty(%{{.*}}) : tensor<?x16xf32>
    // CHECK: %[[F:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E]] : tensor<?x16xf32>)
    // CHECK: %[[M:.*]] = linalg.matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %[[W]] : tensor<?x4xf32>, tensor<16x4xbf16>) outs(%[[F]] : tensor<?x16xf32>)
    // CHECK: %[[Q:.*]] = tensor.extract_slice %[[M]][0, 0] [%{{.*}}, 8] [1, 1] : tensor<?x16xf32> to tensor<?x8xf32>
    // CHECK: %[[K:.*]] = tensor.extract_slice %[[M]][0, 8] [%{{.*}}, 4] [1, 1] : tensor<?x16xf32> to tensor<?x4xf32>
    // CHECK: %[[V:.*]] = tensor.extract_slice %[[M]][0, 12] [%{{.*}}, 4] [1, 1] : tensor<?x16xf32> to tensor<?x4xf32>
    // CHECK-NOT: linalg.matmul {{.*}}tensor<8x4xbf16>
    // CHECK: linalg.matmul {{.*}} tensor<4x8xbf16>
    // CHECK: return %[[Q]], %[[K]], %[[V]], %{{.*}}
    %zero = arith.constant 0.0 : f32
    %wq = ml_program.global_load_const @l0.q_proj.weight : tensor<8x4xbf16>
    %eq = tensor.empty(%t) : tensor<?x8xf32>
    %fq = linalg.fill ins(%zero : f32) outs(%eq : tensor<?x8xf32>) -> tensor<?x8xf32>
    %q = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%h, %wq : tensor<?x4xf32>, tensor<8x4xbf16>) outs(%fq : tensor<?x8xf32>) -> tensor<?x8xf32>
    %wk = ml_program.global_load_const @l0.k_proj.weight : tensor<4x4xbf16>
    %ek = tensor.empty(%t) : tensor<?x4xf32>
    %fk = linalg.fill ins(%zero : f32) outs(%ek : tensor<?x4xf32>) -> tensor<?x4xf32>
    %k = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%h, %wk : tensor<?x4xf32>, tensor<4x4xbf16>) outs(%fk : tensor<?x4xf32>) -> tensor<?x4xf32>
    %wv = ml_program.global_load_const @l0.v_proj.weight : tensor<4x4xbf16>
    %ev = tensor.empty(%t) : tensor<?x4xf32>
    %fv = linalg.fill ins(%zero : f32) outs(%ev : tensor<?x4xf32>) -> tensor<?x4xf32>
    %v = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%h, %wv : tensor<?x4xf32>, tensor<4x4xbf16>) outs(%fv : tensor<?x4xf32>) -> tensor<?x4xf32>
    %wo = ml_program.global_load_const @l0.o_proj.weight : tensor<4x8xbf16>
    %eo = tensor.empty(%t) : tensor<?x4xf32>
    %fo = linalg.fill ins(%zero : f32) outs(%eo : tensor<?x4xf32>) -> tensor<?x4xf32>
    %o = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%a, %wo : tensor<?x8xf32>, tensor<4x8xbf16>) outs(%fo : tensor<?x4xf32>) -> tensor<?x4xf32>
    return %q, %k, %v, %o : tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>
  }

  // The second entry point loads the same fused global.
  // CHECK-LABEL: func.func @prefill
  // CHECK: ml_program.global_load_const @l0.qkv_proj.weight : tensor<16x4xbf16>
  // CHECK-NOT: ml_program.global_load_const @l0.qkv_proj.weight
  func.func @prefill(%h: tensor<?x4xf32>, %t: index) -> (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) {
    %zero = arith.constant 0.0 : f32
    %wq = ml_program.global_load_const @l0.q_proj.weight : tensor<8x4xbf16>
    %eq = tensor.empty(%t) : tensor<?x8xf32>
    %fq = linalg.fill ins(%zero : f32) outs(%eq : tensor<?x8xf32>) -> tensor<?x8xf32>
    %q = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%h, %wq : tensor<?x4xf32>, tensor<8x4xbf16>) outs(%fq : tensor<?x8xf32>) -> tensor<?x8xf32>
    %wk = ml_program.global_load_const @l0.k_proj.weight : tensor<4x4xbf16>
    %ek = tensor.empty(%t) : tensor<?x4xf32>
    %fk = linalg.fill ins(%zero : f32) outs(%ek : tensor<?x4xf32>) -> tensor<?x4xf32>
    %k = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%h, %wk : tensor<?x4xf32>, tensor<4x4xbf16>) outs(%fk : tensor<?x4xf32>) -> tensor<?x4xf32>
    %wv = ml_program.global_load_const @l0.v_proj.weight : tensor<4x4xbf16>
    %ev = tensor.empty(%t) : tensor<?x4xf32>
    %fv = linalg.fill ins(%zero : f32) outs(%ev : tensor<?x4xf32>) -> tensor<?x4xf32>
    %v = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%h, %wv : tensor<?x4xf32>, tensor<4x4xbf16>) outs(%fv : tensor<?x4xf32>) -> tensor<?x4xf32>
    return %q, %k, %v : tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>
  }
}

// -----

// FP8 blocks are 128 x 128: a 64-row q would put k's first rows in q's last
// block, so the group stays unfused. Parts of different formats likewise.
#mq = affine_map<(m, n, k) -> (m, k)>
#mw = affine_map<(m, n, k) -> (n, k)>
#mo = affine_map<(m, n, k) -> (m, n)>
module {
  ml_program.global private @q.weight(#ml_program.extern : tensor<64x4xbf16>) : tensor<64x4xbf16> {m2c.quantization = "fp8_block128"}
  ml_program.global private @k.weight(#ml_program.extern : tensor<64x4xbf16>) : tensor<64x4xbf16> {m2c.quantization = "fp8_block128"}
  ml_program.global private @a.weight(#ml_program.extern : tensor<8x4xbf16>) : tensor<8x4xbf16> {m2c.quantization = "int8"}
  ml_program.global private @b.weight(#ml_program.extern : tensor<8x4xbf16>) : tensor<8x4xbf16>
  // CHECK-LABEL: func.func @unfused
  // CHECK-COUNT-4: linalg.matmul
  // CHECK-NOT: extract_slice
  func.func @unfused(%h: tensor<?x4xf32>, %g: tensor<?x4xf32>, %t: index) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x8xf32>, tensor<?x8xf32>) {
    %zero = arith.constant 0.0 : f32
    %wq = ml_program.global_load_const @q.weight : tensor<64x4xbf16>
    %e0 = tensor.empty(%t) : tensor<?x64xf32>
    %f0 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<?x64xf32>) -> tensor<?x64xf32>
    // expected-remark @below {{m2c-fuse-projections: projections not fused: an FP8 block would straddle two parts}}
    %q = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%h, %wq : tensor<?x4xf32>, tensor<64x4xbf16>) outs(%f0 : tensor<?x64xf32>) -> tensor<?x64xf32>
    %wk = ml_program.global_load_const @k.weight : tensor<64x4xbf16>
    %k = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%h, %wk : tensor<?x4xf32>, tensor<64x4xbf16>) outs(%f0 : tensor<?x64xf32>) -> tensor<?x64xf32>
    %wa = ml_program.global_load_const @a.weight : tensor<8x4xbf16>
    %e1 = tensor.empty(%t) : tensor<?x8xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x8xf32>) -> tensor<?x8xf32>
    // expected-remark @below {{m2c-fuse-projections: projections not fused: weights differ in quantization or checkpoint format}}
    %a = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%g, %wa : tensor<?x4xf32>, tensor<8x4xbf16>) outs(%f1 : tensor<?x8xf32>) -> tensor<?x8xf32>
    %wb = ml_program.global_load_const @b.weight : tensor<8x4xbf16>
    %b = linalg.matmul indexing_maps = [#mq, #mw, #mo] ins(%g, %wb : tensor<?x4xf32>, tensor<8x4xbf16>) outs(%f1 : tensor<?x8xf32>) -> tensor<?x8xf32>
    return %q, %k, %a, %b : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x8xf32>, tensor<?x8xf32>
  }
}
