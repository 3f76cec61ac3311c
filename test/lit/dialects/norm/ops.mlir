// RUN: m2c-opt %s | FileCheck %s
// RUN: m2c-opt %s | m2c-opt | FileCheck %s
// RUN: m2c-opt %s --mlir-print-op-generic | m2c-opt | FileCheck %s

// CHECK-LABEL: func.func @rms
func.func @rms(%x: tensor<?x3072xf32>, %w: tensor<3072xbf16>) -> tensor<?x3072xf32> {
  // CHECK: norm.rms %{{.*}}, %{{.*}} eps = 9.9999999999999995E-7 : (tensor<?x3072xf32>, tensor<3072xbf16>) -> tensor<?x3072xf32>
  %0 = norm.rms %x, %w eps = 1.0e-06 : (tensor<?x3072xf32>, tensor<3072xbf16>) -> tensor<?x3072xf32>
  return %0 : tensor<?x3072xf32>
}

// QK-norm spans all heads at once: the weight covers heads * head_dim.
// CHECK-LABEL: func.func @qk_norm
func.func @qk_norm(%q: tensor<4x6144xf32>, %w: tensor<6144xf32>) -> tensor<4x6144xf32> {
  // CHECK: norm.rms {{.*}} : (tensor<4x6144xf32>, tensor<6144xf32>) -> tensor<4x6144xf32>
  %0 = norm.rms %q, %w eps = 1.0e-05 : (tensor<4x6144xf32>, tensor<6144xf32>) -> tensor<4x6144xf32>
  return %0 : tensor<4x6144xf32>
}

// The decode tail: norm, projection and argmax (m2c-fuse-decode-tail).
// CHECK-LABEL: func.func @rms_logits
func.func @rms_logits(%x: tensor<?x3072xf32>, %w: tensor<3072xbf16>, %h: tensor<200064x3072xbf16>) -> (tensor<?x200064xf32>, tensor<?x1xi32>) {
  // CHECK: norm.rms_logits %{{.*}}, %{{.*}}, %{{.*}} eps = 9.9999999999999995E-7 : (tensor<?x3072xf32>, tensor<3072xbf16>, tensor<200064x3072xbf16>) -> (tensor<?x200064xf32>, tensor<?x1xi32>)
  %l, %i = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<?x3072xf32>, tensor<3072xbf16>, tensor<200064x3072xbf16>) -> (tensor<?x200064xf32>, tensor<?x1xi32>)
  return %l, %i : tensor<?x200064xf32>, tensor<?x1xi32>
}

// CHECK-LABEL: func.func @rms_logits_residual
func.func @rms_logits_residual(%x: tensor<?x64xf32>, %r: tensor<?x64xf32>, %w: tensor<64xbf16>, %h: tensor<512x64xbf16>) -> (tensor<?x512xf32>, tensor<?x1xi32>) {
  // CHECK: norm.rms_logits %{{.*}}, %{{.*}}, %{{.*}} residual(%{{.*}} : tensor<?x64xf32>) eps = 9.9999999999999995E-7
  %l, %i = norm.rms_logits %x, %w, %h residual(%r : tensor<?x64xf32>) eps = 1.0e-06 : (tensor<?x64xf32>, tensor<64xbf16>, tensor<512x64xbf16>) -> (tensor<?x512xf32>, tensor<?x1xi32>)
  return %l, %i : tensor<?x512xf32>, tensor<?x1xi32>
}

// With sampling candidates: each row's 64 best logits and their indices.
// CHECK-LABEL: func.func @rms_logits_candidates
func.func @rms_logits_candidates(%x: tensor<?x64xf32>, %w: tensor<64xbf16>, %h: tensor<512x64xbf16>) -> (tensor<?x64xi32>, tensor<?x64xf32>) {
  // CHECK: norm.rms_logits {{.*}} -> (tensor<?x512xf32>, tensor<?x1xi32>, tensor<?x64xi32>, tensor<?x64xf32>)
  %l, %i, %c, %v = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<?x64xf32>, tensor<64xbf16>, tensor<512x64xbf16>) -> (tensor<?x512xf32>, tensor<?x1xi32>, tensor<?x64xi32>, tensor<?x64xf32>)
  return %c, %v : tensor<?x64xi32>, tensor<?x64xf32>
}

// Pure: an unused norm disappears.
// RUN: m2c-opt %s --canonicalize | FileCheck %s --check-prefix=DCE
// DCE-LABEL: func.func @dead
// DCE-NOT: norm.rms
func.func @dead(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  %0 = norm.rms %x, %w eps = 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return
}
