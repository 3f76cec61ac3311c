// RUN: m2c-opt %s --m2c-fuse-add-rmsnorm --split-input-file | FileCheck %s
// RUN: m2c-opt %s --split-input-file | FileCheck %s --check-prefix=NOPASS

// CHECK-LABEL: func.func @fuse
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>, %[[D:.*]]: tensor<?x8xf32>, %[[W:.*]]: tensor<8xbf16>)
// CHECK: %[[SUM:.*]], %[[N:.*]] = norm.add_rms %[[X]], %[[D]], %[[W]] eps = 9.9999999999999995E-7
// CHECK-NOT: arith.addf
// CHECK-NOT: norm.rms
// CHECK: return %[[SUM]], %[[N]]
// NOPASS-LABEL: func.func @fuse
// NOPASS: arith.addf
// NOPASS: norm.rms
func.func @fuse(%x: tensor<?x8xf32>, %d: tensor<?x8xf32>, %w: tensor<8xbf16>)
    -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %s = arith.addf %x, %d : tensor<?x8xf32>
  %n = norm.rms %s, %w eps = 1.0e-06 : (tensor<?x8xf32>, tensor<8xbf16>) -> tensor<?x8xf32>
  return %s, %n : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// The sum is needed before the norm runs: fusing would break dominance.
// CHECK-LABEL: func.func @used_before
// CHECK: arith.addf
// CHECK: norm.rms
// CHECK-NOT: norm.add_rms
func.func @used_before(%x: tensor<?x8xf32>, %d: tensor<?x8xf32>, %w: tensor<8xbf16>)
    -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %s = arith.addf %x, %d : tensor<?x8xf32>
  %t = arith.addf %s, %s : tensor<?x8xf32>
  %n = norm.rms %s, %w eps = 1.0e-06 : (tensor<?x8xf32>, tensor<8xbf16>) -> tensor<?x8xf32>
  return %t, %n : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// A norm whose input is not an add is left alone.
// CHECK-LABEL: func.func @plain
// CHECK: norm.rms
// CHECK-NOT: norm.add_rms
func.func @plain(%x: tensor<?x8xf32>, %w: tensor<8xbf16>) -> tensor<?x8xf32> {
  %n = norm.rms %x, %w eps = 1.0e-06 : (tensor<?x8xf32>, tensor<8xbf16>) -> tensor<?x8xf32>
  return %n : tensor<?x8xf32>
}
