// RUN: m2c-opt %s -split-input-file -verify-diagnostics

// One case per verifier branch of moe.route and moe.experts.

func.func @num_experts(%h: tensor<?x64xf32>, %g: tensor<0x64xbf16>, %b: tensor<1xf32>) {
  // expected-error @+1 {{'moe.route' op expects a positive num_experts, got 0}}
  %ids, %w = moe.route %h, %g {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 0 : i64, renormalize = true} : tensor<?x64xf32>, tensor<0x64xbf16> -> tensor<?x2xi32>, tensor<?x2xf32>
  return
}

// -----

func.func @top_k_too_large(%h: tensor<?x64xf32>, %g: tensor<8x64xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.route' op expects top_k (9) to be in [1, num_experts (8)]}}
  %ids, %w = moe.route %h, %g bias(%b : tensor<8xf32>) {scoring = #moe.scoring<sigmoid>, top_k = 9 : i64, num_experts = 8 : i64, renormalize = true} : tensor<?x64xf32>, tensor<8x64xbf16> -> tensor<?x9xi32>, tensor<?x9xf32>
  return
}

// -----

func.func @top_k_zero(%h: tensor<?x64xf32>, %g: tensor<8x64xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.route' op expects top_k (0) to be in [1, num_experts (8)]}}
  %ids, %w = moe.route %h, %g bias(%b : tensor<8xf32>) {scoring = #moe.scoring<sigmoid>, top_k = 0 : i64, num_experts = 8 : i64, renormalize = true} : tensor<?x64xf32>, tensor<8x64xbf16> -> tensor<?x2xi32>, tensor<?x2xf32>
  return
}

// -----

func.func @hidden_rank(%h: tensor<64xf32>, %g: tensor<8x64xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.route' op expects hidden of rank 2 [tokens, hidden], got 'tensor<64xf32>'}}
  %ids, %w = moe.route %h, %g bias(%b : tensor<8xf32>) {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : tensor<64xf32>, tensor<8x64xbf16> -> tensor<?x2xi32>, tensor<?x2xf32>
  return
}

// -----

func.func @gate_shape(%h: tensor<?x64xf32>, %g: tensor<8x32xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.route' op expects gate_weight of shape [8, 64], got [8, 32]}}
  %ids, %w = moe.route %h, %g bias(%b : tensor<8xf32>) {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : tensor<?x64xf32>, tensor<8x32xbf16> -> tensor<?x2xi32>, tensor<?x2xf32>
  return
}

// -----

func.func @gate_experts(%h: tensor<?x64xf32>, %g: tensor<16x64xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.route' op expects gate_weight of shape [8, 64], got [16, 64]}}
  %ids, %w = moe.route %h, %g bias(%b : tensor<8xf32>) {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : tensor<?x64xf32>, tensor<16x64xbf16> -> tensor<?x2xi32>, tensor<?x2xf32>
  return
}

// -----

func.func @bias_shape(%h: tensor<?x64xf32>, %g: tensor<8x64xbf16>, %b: tensor<7xf32>) {
  // expected-error @+1 {{'moe.route' op expects correction_bias of shape [8], got [7]}}
  %ids, %w = moe.route %h, %g bias(%b : tensor<7xf32>) {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : tensor<?x64xf32>, tensor<8x64xbf16> -> tensor<?x2xi32>, tensor<?x2xf32>
  return
}

// -----

func.func @ids_shape(%h: tensor<?x64xf32>, %g: tensor<8x64xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.route' op expects results of shape [tokens, top_k] = [?, 2], got [?, 3]}}
  %ids, %w = moe.route %h, %g bias(%b : tensor<8xf32>) {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : tensor<?x64xf32>, tensor<8x64xbf16> -> tensor<?x3xi32>, tensor<?x2xf32>
  return
}

// -----

func.func @weights_rows(%h: tensor<4x64xf32>, %g: tensor<8x64xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.route' op expects results of shape [tokens, top_k] = [4, 2], got [5, 2]}}
  %ids, %w = moe.route %h, %g bias(%b : tensor<8xf32>) {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : tensor<4x64xf32>, tensor<8x64xbf16> -> tensor<4x2xi32>, tensor<5x2xf32>
  return
}

// -----

func.func @hidden_rank(%h: tensor<64xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %w1: tensor<8x32x64xbf16>, %w3: tensor<8x32x64xbf16>, %w2: tensor<8x64x32xbf16>) {
  // expected-error @+1 {{'moe.experts' op expects hidden of rank 2 [tokens, hidden], got 'tensor<64xf32>'}}
  %0 = moe.experts %h, %ids, %w, %w1, %w3, %w2 : tensor<64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x32x64xbf16>, tensor<8x32x64xbf16>, tensor<8x64x32xbf16> -> tensor<64xf32>
  return
}

// -----

func.func @ids_weights(%h: tensor<?x64xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x3xf32>, %w1: tensor<8x32x64xbf16>, %w3: tensor<8x32x64xbf16>, %w2: tensor<8x64x32xbf16>) {
  // expected-error @+1 {{'moe.experts' op expects expert_ids and expert_weights of one shape [tokens, top_k], got [?, 2] and [?, 3]}}
  %0 = moe.experts %h, %ids, %w, %w1, %w3, %w2 : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x3xf32>, tensor<8x32x64xbf16>, tensor<8x32x64xbf16>, tensor<8x64x32xbf16> -> tensor<?x64xf32>
  return
}

// -----

func.func @ids_rows(%h: tensor<4x64xf32>, %ids: tensor<3x2xi32>, %w: tensor<3x2xf32>, %w1: tensor<8x32x64xbf16>, %w3: tensor<8x32x64xbf16>, %w2: tensor<8x64x32xbf16>) {
  // expected-error @+1 {{'moe.experts' op expects one row of expert_ids per token (4), got 3}}
  %0 = moe.experts %h, %ids, %w, %w1, %w3, %w2 : tensor<4x64xf32>, tensor<3x2xi32>, tensor<3x2xf32>, tensor<8x32x64xbf16>, tensor<8x32x64xbf16>, tensor<8x64x32xbf16> -> tensor<4x64xf32>
  return
}

// -----

func.func @gate_shape(%h: tensor<?x64xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %w1: tensor<8x32x48xbf16>, %w3: tensor<8x32x64xbf16>, %w2: tensor<8x64x32xbf16>) {
  // expected-error @+1 {{'moe.experts' op expects gate_proj of shape [experts, intermediate, 64], got [8, 32, 48]}}
  %0 = moe.experts %h, %ids, %w, %w1, %w3, %w2 : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x32x48xbf16>, tensor<8x32x64xbf16>, tensor<8x64x32xbf16> -> tensor<?x64xf32>
  return
}

// -----

func.func @up_shape(%h: tensor<?x64xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %w1: tensor<8x32x64xbf16>, %w3: tensor<8x16x64xbf16>, %w2: tensor<8x64x32xbf16>) {
  // expected-error @+1 {{'moe.experts' op expects up_proj to have the shape of gate_proj [8, 32, 64], got [8, 16, 64]}}
  %0 = moe.experts %h, %ids, %w, %w1, %w3, %w2 : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x32x64xbf16>, tensor<8x16x64xbf16>, tensor<8x64x32xbf16> -> tensor<?x64xf32>
  return
}

// -----

func.func @down_shape(%h: tensor<?x64xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %w1: tensor<8x32x64xbf16>, %w3: tensor<8x32x64xbf16>, %w2: tensor<8x32x64xbf16>) {
  // expected-error @+1 {{'moe.experts' op expects down_proj of shape [8, 64, 32], got [8, 32, 64]}}
  %0 = moe.experts %h, %ids, %w, %w1, %w3, %w2 : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x32x64xbf16>, tensor<8x32x64xbf16>, tensor<8x32x64xbf16> -> tensor<?x64xf32>
  return
}

// -----

func.func @result_type(%h: tensor<?x64xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %w1: tensor<8x32x64xbf16>, %w3: tensor<8x32x64xbf16>, %w2: tensor<8x64x32xbf16>) {
  // expected-error @+1 {{'moe.experts' op expects the result type 'tensor<?x64xbf16>' to equal the hidden type 'tensor<?x64xf32>'}}
  %0 = moe.experts %h, %ids, %w, %w1, %w3, %w2 : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x32x64xbf16>, tensor<8x32x64xbf16>, tensor<8x64x32xbf16> -> tensor<?x64xbf16>
  return
}

// -----

func.func @residual_type(%h: tensor<?x64xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %w1: tensor<8x32x64xbf16>, %w3: tensor<8x32x64xbf16>, %w2: tensor<8x64x32xbf16>, %r: tensor<?x32xf32>) {
  // expected-error @+1 {{'moe.experts' op expects the residual type 'tensor<?x32xf32>' to equal the hidden type 'tensor<?x64xf32>'}}
  %0 = moe.experts %h, %ids, %w, %w1, %w3, %w2 residual(%r : tensor<?x32xf32>) : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x32x64xbf16>, tensor<8x32x64xbf16>, tensor<8x64x32xbf16> -> tensor<?x64xf32>
  return
}

// -----

// moe.norm_route: its own branches, then the routing checks it shares with
// moe.route.

func.func @norm_route_residual(%x: tensor<?x64xf32>, %d: tensor<?x32xf32>, %n: tensor<64xbf16>, %g: tensor<8x64xbf16>) {
  // expected-error @+1 {{'moe.norm_route' op expects the residual type 'tensor<?x32xf32>' to equal the input type 'tensor<?x64xf32>'}}
  %s, %h, %ids, %w = moe.norm_route %x, %d, %n, %g eps = 1.0e-06 {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<64xbf16>, tensor<8x64xbf16>) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @norm_route_hidden_type(%x: tensor<?x64xf32>, %d: tensor<?x64xf32>, %n: tensor<64xbf16>, %g: tensor<8x64xbf16>) {
  // expected-error @+1 {{'moe.norm_route' op expects the sum and hidden types to equal the input type 'tensor<?x64xf32>'}}
  %s, %h, %ids, %w = moe.norm_route %x, %d, %n, %g eps = 1.0e-06 {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xbf16>, tensor<8x64xbf16>) -> (tensor<?x64xf32>, tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @norm_route_norm_weight(%x: tensor<?x64xf32>, %d: tensor<?x64xf32>, %n: tensor<32xbf16>, %g: tensor<8x64xbf16>) {
  // expected-error @+1 {{'moe.norm_route' op expects norm_weight of shape [64], got [32]}}
  %s, %h, %ids, %w = moe.norm_route %x, %d, %n, %g eps = 1.0e-06 {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<32xbf16>, tensor<8x64xbf16>) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @norm_route_eps(%x: tensor<?x64xf32>, %d: tensor<?x64xf32>, %n: tensor<64xbf16>, %g: tensor<8x64xbf16>) {
  // expected-error @+1 {{'moe.norm_route' op expects a positive eps, got 0}}
  %s, %h, %ids, %w = moe.norm_route %x, %d, %n, %g eps = 0.0 {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xbf16>, tensor<8x64xbf16>) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @norm_route_gate(%x: tensor<?x64xf32>, %d: tensor<?x64xf32>, %n: tensor<64xbf16>, %g: tensor<8x32xbf16>) {
  // expected-error @+1 {{'moe.norm_route' op expects gate_weight of shape [8, 64], got [8, 32]}}
  %s, %h, %ids, %w = moe.norm_route %x, %d, %n, %g eps = 1.0e-06 {scoring = #moe.scoring<sigmoid>, top_k = 2 : i64, num_experts = 8 : i64, renormalize = true} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xbf16>, tensor<8x32xbf16>) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>)
  return
}
