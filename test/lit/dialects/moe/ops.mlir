// RUN: m2c-opt %s | FileCheck %s
// RUN: m2c-opt %s | m2c-opt | FileCheck %s
// RUN: m2c-opt %s --mlir-print-op-generic | m2c-opt | FileCheck %s

// CHECK-LABEL: func.func @route_with_bias
// CHECK: moe.route %{{.*}}, %{{.*}} bias(%{{.*}} : tensor<256xf32>) {num_experts = 256 : i64, renormalize = true, scoring = #moe.scoring<sigmoid>, top_k = 8 : i64} : tensor<?x3072xf32>, tensor<256x3072xbf16> -> tensor<?x8xi32>, tensor<?x8xf32>
func.func @route_with_bias(%h: tensor<?x3072xf32>, %gate: tensor<256x3072xbf16>, %bias: tensor<256xf32>)
    -> (tensor<?x8xi32>, tensor<?x8xf32>) {
  %ids, %w = moe.route %h, %gate bias(%bias : tensor<256xf32>)
      {scoring = #moe.scoring<sigmoid>, top_k = 8 : i64, num_experts = 256 : i64, renormalize = true}
      : tensor<?x3072xf32>, tensor<256x3072xbf16> -> tensor<?x8xi32>, tensor<?x8xf32>
  return %ids, %w : tensor<?x8xi32>, tensor<?x8xf32>
}

// CHECK-LABEL: func.func @route_softmax_no_bias
// CHECK: moe.route %{{.*}}, %{{.*}} {num_experts = 8 : i64, renormalize = false, scoring = #moe.scoring<softmax>, top_k = 2 : i64}
func.func @route_softmax_no_bias(%h: tensor<4x64xf32>, %gate: tensor<8x64xf32>)
    -> (tensor<4x2xi32>, tensor<4x2xf32>) {
  %ids, %w = moe.route %h, %gate
      {scoring = #moe.scoring<softmax>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = false}
      : tensor<4x64xf32>, tensor<8x64xf32> -> tensor<4x2xi32>, tensor<4x2xf32>
  return %ids, %w : tensor<4x2xi32>, tensor<4x2xf32>
}

// CHECK-LABEL: func.func @experts
// CHECK: moe.experts %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x3072xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<256x1536x3072xbf16>, tensor<256x1536x3072xbf16>, tensor<256x3072x1536xbf16> -> tensor<?x3072xf32>
func.func @experts(%h: tensor<?x3072xf32>, %ids: tensor<?x8xi32>, %w: tensor<?x8xf32>,
                   %w1: tensor<256x1536x3072xbf16>, %w3: tensor<256x1536x3072xbf16>,
                   %w2: tensor<256x3072x1536xbf16>) -> tensor<?x3072xf32> {
  %y = moe.experts %h, %ids, %w, %w1, %w3, %w2
      : tensor<?x3072xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<256x1536x3072xbf16>,
        tensor<256x1536x3072xbf16>, tensor<256x3072x1536xbf16> -> tensor<?x3072xf32>
  return %y : tensor<?x3072xf32>
}

// CHECK-LABEL: func.func @norm_route
// CHECK: moe.norm_route %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} bias(%{{.*}} : tensor<256xf32>) eps = 9.9999999999999995E-7 {num_experts = 256 : i64, renormalize = true, scoring = #moe.scoring<sigmoid>, top_k = 8 : i64} : (tensor<?x3072xf32>, tensor<?x3072xf32>, tensor<3072xbf16>, tensor<256x3072xbf16>) -> (tensor<?x3072xf32>, tensor<?x3072xf32>, tensor<?x8xi32>, tensor<?x8xf32>)
func.func @norm_route(%x: tensor<?x3072xf32>, %d: tensor<?x3072xf32>, %n: tensor<3072xbf16>, %gate: tensor<256x3072xbf16>, %bias: tensor<256xf32>)
    -> (tensor<?x3072xf32>, tensor<?x3072xf32>, tensor<?x8xi32>, tensor<?x8xf32>) {
  %s, %h, %ids, %w = moe.norm_route %x, %d, %n, %gate bias(%bias : tensor<256xf32>) eps = 1.0e-06
      {scoring = #moe.scoring<sigmoid>, top_k = 8 : i64, num_experts = 256 : i64, renormalize = true}
      : (tensor<?x3072xf32>, tensor<?x3072xf32>, tensor<3072xbf16>, tensor<256x3072xbf16>)
      -> (tensor<?x3072xf32>, tensor<?x3072xf32>, tensor<?x8xi32>, tensor<?x8xf32>)
  return %s, %h, %ids, %w : tensor<?x3072xf32>, tensor<?x3072xf32>, tensor<?x8xi32>, tensor<?x8xf32>
}
