// RUN: m2c-opt %s --m2c-fuse-moe-residual --split-input-file | FileCheck %s
// RUN: m2c-opt %s --split-input-file | FileCheck %s --check-prefix=NOPASS

// CHECK-LABEL: func.func @fold
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x8xf32>, %[[H:[^:]*]]: tensor<?x8xf32>
// CHECK: %[[Y:.*]] = moe.experts %[[H]], {{.*}} residual(%[[X]] : tensor<?x8xf32>)
// CHECK-NOT: arith.addf
// CHECK: return %[[Y]]
// NOPASS-LABEL: func.func @fold
// NOPASS: arith.addf
func.func @fold(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>, %ids: tensor<?x2xi32>, %wts: tensor<?x2xf32>,
                %w1: tensor<4x16x8xbf16>, %w3: tensor<4x16x8xbf16>, %w2: tensor<4x8x16xbf16>) -> tensor<?x8xf32> {
  %y = moe.experts %h, %ids, %wts, %w1, %w3, %w2
      : tensor<?x8xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<4x16x8xbf16>, tensor<4x16x8xbf16>, tensor<4x8x16xbf16> -> tensor<?x8xf32>
  %r = arith.addf %x, %y : tensor<?x8xf32>
  return %r : tensor<?x8xf32>
}

// -----

// The experts result is used elsewhere too: folding would change that use.
// CHECK-LABEL: func.func @other_use
// CHECK: moe.experts
// CHECK-NOT: residual(
// CHECK: arith.addf
func.func @other_use(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>, %ids: tensor<?x2xi32>, %wts: tensor<?x2xf32>,
                     %w1: tensor<4x16x8xbf16>, %w3: tensor<4x16x8xbf16>, %w2: tensor<4x8x16xbf16>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %y = moe.experts %h, %ids, %wts, %w1, %w3, %w2
      : tensor<?x8xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<4x16x8xbf16>, tensor<4x16x8xbf16>, tensor<4x8x16xbf16> -> tensor<?x8xf32>
  %r = arith.addf %y, %x : tensor<?x8xf32>
  return %r, %y : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// The residual is computed after the experts: it cannot become an operand.
// CHECK-LABEL: func.func @late_residual
// CHECK: moe.experts
// CHECK-NOT: residual(
// CHECK: arith.addf
func.func @late_residual(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>, %ids: tensor<?x2xi32>, %wts: tensor<?x2xf32>,
                         %w1: tensor<4x16x8xbf16>, %w3: tensor<4x16x8xbf16>, %w2: tensor<4x8x16xbf16>) -> tensor<?x8xf32> {
  %y = moe.experts %h, %ids, %wts, %w1, %w3, %w2
      : tensor<?x8xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<4x16x8xbf16>, tensor<4x16x8xbf16>, tensor<4x8x16xbf16> -> tensor<?x8xf32>
  %late = arith.mulf %x, %x : tensor<?x8xf32>
  %r = arith.addf %late, %y : tensor<?x8xf32>
  return %r : tensor<?x8xf32>
}
