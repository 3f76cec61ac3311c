// RUN: m2c-opt %s --m2c-fuse-decode-tail --split-input-file | FileCheck %s
// RUN: m2c-opt %s --split-input-file | FileCheck %s --check-prefix=NOPASS
// RUN: m2c-opt %s --m2c-fuse-decode-tail=candidates=0 --split-input-file | FileCheck %s --check-prefix=NONE
// RUN: m2c-opt %s --m2c-fuse-decode-tail=candidates=1000 --split-input-file | FileCheck %s --check-prefix=WIDE
// RUN: not m2c-opt %s --m2c-fuse-decode-tail=candidates=-1 --split-input-file 2>&1 | FileCheck %s --check-prefix=NEGATIVE

// The final norm, the lm_head and the argmax become one op, and the
// function also returns the greedy ids and each row's 64 best logits
// (the default candidates).
// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x64xf32>, %[[N:[^:]*]]: tensor<64xbf16>, %[[H:[^:]*]]: tensor<512x64xbf16>) -> (tensor<?x512xf32>, tensor<?x1xi32>, tensor<?x64xi32>, tensor<?x64xf32>)
// CHECK-NOT: linalg.matmul
// CHECK-NOT: norm.rms %
// CHECK: %[[L:.*]], %[[I:.*]], %[[C:.*]]:2 = norm.rms_logits %[[X]], %[[N]], %[[H]] eps = 9.9999999999999995E-7 : (tensor<?x64xf32>, tensor<64xbf16>, tensor<512x64xbf16>) -> (tensor<?x512xf32>, tensor<?x1xi32>, tensor<?x64xi32>, tensor<?x64xf32>)
// CHECK-NOT: linalg.fill
// CHECK: return %[[L]], %[[I]], %[[C]]#0, %[[C]]#1 : tensor<?x512xf32>, tensor<?x1xi32>, tensor<?x64xi32>, tensor<?x64xf32>
// Without candidates: the logits and the ids.
// NONE-LABEL: func.func @decode
// NONE-SAME: -> (tensor<?x512xf32>, tensor<?x1xi32>)
// NONE: %[[L:.*]], %[[I:.*]] = norm.rms_logits {{.*}} -> (tensor<?x512xf32>, tensor<?x1xi32>)
// NONE: return %[[L]], %[[I]] : tensor<?x512xf32>, tensor<?x1xi32>
// More candidates than the vocabulary: the whole vocabulary.
// WIDE-LABEL: func.func @decode
// WIDE-SAME: -> (tensor<?x512xf32>, tensor<?x1xi32>, tensor<?x512xi32>, tensor<?x512xf32>)
// NEGATIVE: error: m2c-fuse-decode-tail: candidates must be >= 0, got -1
// NOPASS-LABEL: func.func @decode
// NOPASS: norm.rms
// NOPASS: linalg.matmul
// NOPASS-NOT: norm.rms_logits
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @decode(%x: tensor<?x64xf32>, %n: tensor<64xbf16>, %h: tensor<512x64xbf16>) -> tensor<?x512xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %t = tensor.dim %x, %c0 : tensor<?x64xf32>
  %y = norm.rms %x, %n eps = 1.0e-06 : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  %e = tensor.empty(%t) : tensor<?x512xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x512xf32>) -> tensor<?x512xf32>
  %l = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%y, %h : tensor<?x64xf32>, tensor<512x64xbf16>) outs(%f : tensor<?x512xf32>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// The last layer's residual add went to the final norm (norm.add_rms, its
// sum unused): it becomes the op's residual.
// CHECK-LABEL: func.func @add_rms
// CHECK: norm.rms_logits %{{.*}}, %{{.*}}, %{{.*}} residual(%{{.*}} : tensor<?x64xf32>) eps
// CHECK-NOT: norm.add_rms
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @add_rms(%x: tensor<?x64xf32>, %r: tensor<?x64xf32>, %n: tensor<64xbf16>, %h: tensor<512x64xbf16>) -> tensor<?x512xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %t = tensor.dim %x, %c0 : tensor<?x64xf32>
  %s, %y = norm.add_rms %x, %r, %n eps = 1.0e-06 : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xbf16>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %e = tensor.empty(%t) : tensor<?x512xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x512xf32>) -> tensor<?x512xf32>
  %l = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%y, %h : tensor<?x64xf32>, tensor<512x64xbf16>) outs(%f : tensor<?x512xf32>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// A used sum is the residual stream someone still reads: nothing to fuse.
// CHECK-LABEL: func.func @sum_used
// CHECK: norm.add_rms
// CHECK: linalg.matmul
// CHECK-NOT: norm.rms_logits
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func private @use(tensor<2x64xf32>)
func.func @sum_used(%x: tensor<2x64xf32>, %r: tensor<2x64xf32>, %n: tensor<64xbf16>, %h: tensor<512x64xbf16>) -> tensor<2x512xf32> {
  %zero = arith.constant 0.0 : f32
  %s, %y = norm.add_rms %x, %r, %n eps = 1.0e-06 : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<64xbf16>) -> (tensor<2x64xf32>, tensor<2x64xf32>)
  %e = tensor.empty() : tensor<2x512xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x512xf32>) -> tensor<2x512xf32>
  %l = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%y, %h : tensor<2x64xf32>, tensor<512x64xbf16>) outs(%f : tensor<2x512xf32>) -> tensor<2x512xf32>
  func.call @use(%s) : (tensor<2x64xf32>) -> ()
  return %l : tensor<2x512xf32>
}

// -----

// A normalised row read by more than the projection stays as it is.
// CHECK-LABEL: func.func @norm_shared
// CHECK: norm.rms
// CHECK: linalg.matmul
// CHECK-NOT: norm.rms_logits
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func private @use(tensor<2x64xf32>)
func.func @norm_shared(%x: tensor<2x64xf32>, %n: tensor<64xbf16>, %h: tensor<512x64xbf16>) -> tensor<2x512xf32> {
  %zero = arith.constant 0.0 : f32
  %y = norm.rms %x, %n eps = 1.0e-06 : (tensor<2x64xf32>, tensor<64xbf16>) -> tensor<2x64xf32>
  %e = tensor.empty() : tensor<2x512xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x512xf32>) -> tensor<2x512xf32>
  %l = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%y, %h : tensor<2x64xf32>, tensor<512x64xbf16>) outs(%f : tensor<2x512xf32>) -> tensor<2x512xf32>
  func.call @use(%y) : (tensor<2x64xf32>) -> ()
  return %l : tensor<2x512xf32>
}

// -----

// A matmul that does not read the weight transposed is not a linear layer.
// CHECK-LABEL: func.func @not_linear
// CHECK: linalg.matmul
// CHECK-NOT: norm.rms_logits
func.func @not_linear(%x: tensor<2x64xf32>, %n: tensor<64xbf16>, %h: tensor<64x512xbf16>) -> tensor<2x512xf32> {
  %zero = arith.constant 0.0 : f32
  %y = norm.rms %x, %n eps = 1.0e-06 : (tensor<2x64xf32>, tensor<64xbf16>) -> tensor<2x64xf32>
  %e = tensor.empty() : tensor<2x512xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x512xf32>) -> tensor<2x512xf32>
  %l = linalg.matmul ins(%y, %h : tensor<2x64xf32>, tensor<64x512xbf16>) outs(%f : tensor<2x512xf32>) -> tensor<2x512xf32>
  return %l : tensor<2x512xf32>
}
