// RUN: m2c-opt %s --m2c-fuse-norm-route --split-input-file | FileCheck %s
// RUN: m2c-opt %s --split-input-file | FileCheck %s --check-prefix=NOPASS

// The post-attention norm becomes the router's prologue: the experts read
// the normalised rows and the residual stream the sum, both from the fused op.
// CHECK-LABEL: func.func @fold
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x64xf32>, %[[D:[^:]*]]: tensor<?x64xf32>, %[[N:[^:]*]]: tensor<64xbf16>, %[[G:[^:]*]]: tensor<8x64xbf16>, %[[B:[^:]*]]: tensor<8xf32>
// CHECK-NOT: norm.add_rms
// CHECK-NOT: moe.route
// CHECK: %[[S:.*]], %[[H:.*]], %[[IDS:.*]], %[[W:.*]] = moe.norm_route %[[X]], %[[D]], %[[N]], %[[G]] bias(%[[B]] : tensor<8xf32>) eps = 9.9999999999999995E-7 {num_experts = 8 : i64, renormalize = true, scoring = #moe.scoring<sigmoid>, top_k = 2 : i64}
// CHECK: moe.experts %[[H]], %[[IDS]], %[[W]], {{.*}} residual(%[[S]] : tensor<?x64xf32>)
// NOPASS-LABEL: func.func @fold
// NOPASS: norm.add_rms
// NOPASS: moe.route
// NOPASS-NOT: moe.norm_route
func.func @fold(%x: tensor<?x64xf32>, %d: tensor<?x64xf32>, %n: tensor<64xbf16>, %g: tensor<8x64xbf16>, %b: tensor<8xf32>,
                %w1: tensor<8x32x64xbf16>, %w3: tensor<8x32x64xbf16>, %w2: tensor<8x64x32xbf16>) -> tensor<?x64xf32> {
  %s, %h = norm.add_rms %x, %d, %n eps = 1.0e-06 : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xbf16>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %ids, %w = moe.route %h, %g bias(%b : tensor<8xf32>) {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : tensor<?x64xf32>, tensor<8x64xbf16> -> tensor<?x2xi32>, tensor<?x2xf32>
  %y = moe.experts %h, %ids, %w, %w1, %w3, %w2 residual(%s : tensor<?x64xf32>) : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x32x64xbf16>, tensor<8x32x64xbf16>, tensor<8x64x32xbf16> -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// A plain norm.rms (the first layer's input norm in the model) stays: the
// router's prologue is the add + norm.
// CHECK-LABEL: func.func @plain_rms
// CHECK: norm.rms
// CHECK: moe.route
func.func @plain_rms(%x: tensor<?x64xf32>, %n: tensor<64xbf16>, %g: tensor<8x64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>) {
  %h = norm.rms %x, %n eps = 1.0e-06 : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  %ids, %w = moe.route %h, %g {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : tensor<?x64xf32>, tensor<8x64xbf16> -> tensor<?x2xi32>, tensor<?x2xf32>
  return %ids, %w : tensor<?x2xi32>, tensor<?x2xf32>
}

// -----

// A user of the norm between it and the router would read the fused op
// before it exists: nothing to fold.
// CHECK-LABEL: func.func @user_before_route
// CHECK: norm.add_rms
// CHECK: moe.route
func.func @user_before_route(%x: tensor<?x64xf32>, %d: tensor<?x64xf32>, %n: tensor<64xbf16>, %g: tensor<8x64xbf16>) -> (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>) {
  %s, %h = norm.add_rms %x, %d, %n eps = 1.0e-06 : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xbf16>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %e = arith.addf %s, %h : tensor<?x64xf32>
  %ids, %w = moe.route %h, %g {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : tensor<?x64xf32>, tensor<8x64xbf16> -> tensor<?x2xi32>, tensor<?x2xf32>
  return %e, %ids, %w : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>
}
