// RUN: m2c-opt %s -split-input-file -verify-diagnostics

func.func @rank0(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{'norm.rms' op expects the input to have rank >= 1, got a rank-0 tensor}}
  %0 = norm.rms %x, %w eps = 1.0e-06 : (tensor<f32>, tensor<1xf32>) -> tensor<f32>
  return
}

// -----

func.func @weight_rank(%x: tensor<2x8xf32>, %w: tensor<2x8xf32>) {
  // expected-error @+1 {{'norm.rms' op expects a rank-1 weight, got rank 2}}
  %0 = norm.rms %x, %w eps = 1.0e-06 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @weight_size(%x: tensor<?x3072xf32>, %w: tensor<4096xbf16>) {
  // expected-error @+1 {{'norm.rms' op expects the weight size (4096) to equal the normalised dimension (3072)}}
  %0 = norm.rms %x, %w eps = 1.0e-06 : (tensor<?x3072xf32>, tensor<4096xbf16>) -> tensor<?x3072xf32>
  return
}

// -----

func.func @result_type(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'norm.rms' op expects the result type 'tensor<2x8xbf16>' to equal the input type 'tensor<2x8xf32>'}}
  %0 = norm.rms %x, %w eps = 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xbf16>
  return
}

// -----

func.func @eps(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'norm.rms' op expects a positive eps, got 0}}
  %0 = norm.rms %x, %w eps = 0.0 : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @add_rms_residual(%x: tensor<2x8xf32>, %r: tensor<2x4xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'norm.add_rms' op expects the residual type 'tensor<2x4xf32>' to equal the input type 'tensor<2x8xf32>'}}
  %s, %n = norm.add_rms %x, %r, %w eps = 1.0e-06 : (tensor<2x8xf32>, tensor<2x4xf32>, tensor<8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @add_rms_sum(%x: tensor<2x8xf32>, %r: tensor<2x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'norm.add_rms' op expects the sum type 'tensor<2x8xbf16>' to equal the input type 'tensor<2x8xf32>'}}
  %s, %n = norm.add_rms %x, %r, %w eps = 1.0e-06 : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<8xf32>) -> (tensor<2x8xbf16>, tensor<2x8xf32>)
  return
}

// -----

// The shared norm checks run for add_rms too.
func.func @add_rms_weight(%x: tensor<2x8xf32>, %r: tensor<2x8xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{'norm.add_rms' op expects the weight size (4) to equal the normalised dimension (8)}}
  %s, %n = norm.add_rms %x, %r, %w eps = 1.0e-06 : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @logits_rank(%x: tensor<8xf32>, %w: tensor<8xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects a rank-2 input [tokens, hidden], got rank 1}}
  %l, %i = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<8xf32>, tensor<8xf32>, tensor<16x8xbf16>) -> (tensor<16xf32>, tensor<1xi32>)
  return
}

// -----

func.func @logits_head_rank(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %h: tensor<8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects a rank-2 lm_head [vocab, hidden], got rank 1}}
  %l, %i = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>, tensor<8xbf16>) -> (tensor<2x8xf32>, tensor<2x1xi32>)
  return
}

// -----

func.func @logits_head_width(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %h: tensor<16x4xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects the lm_head width (4) to equal the hidden size (8)}}
  %l, %i = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>, tensor<16x4xbf16>) -> (tensor<2x16xf32>, tensor<2x1xi32>)
  return
}

// -----

func.func @logits_type(%x: tensor<?x8xf32>, %w: tensor<8xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects logits of type 'tensor<?x16xf32>', got 'tensor<?x8xf32>'}}
  %l, %i = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<?x8xf32>, tensor<8xf32>, tensor<16x8xbf16>) -> (tensor<?x8xf32>, tensor<?x1xi32>)
  return
}

// -----

func.func @logits_ids_type(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects greedy ids of type 'tensor<2x1xi32>', got 'tensor<2x2xi32>'}}
  %l, %i = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>, tensor<16x8xbf16>) -> (tensor<2x16xf32>, tensor<2x2xi32>)
  return
}

// -----

// The shared norm checks run for rms_logits too.
func.func @logits_norm_weight(%x: tensor<2x8xf32>, %w: tensor<4xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects the weight size (4) to equal the normalised dimension (8)}}
  %l, %i = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<2x8xf32>, tensor<4xf32>, tensor<16x8xbf16>) -> (tensor<2x16xf32>, tensor<2x1xi32>)
  return
}

// -----

func.func @logits_norm_rank(%x: tensor<2x8xf32>, %w: tensor<2x8xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects a rank-1 weight, got rank 2}}
  %l, %i = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<16x8xbf16>) -> (tensor<2x16xf32>, tensor<2x1xi32>)
  return
}

// -----

func.func @logits_eps(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects a positive eps, got 0}}
  %l, %i = norm.rms_logits %x, %w, %h eps = 0.0 : (tensor<2x8xf32>, tensor<8xf32>, tensor<16x8xbf16>) -> (tensor<2x16xf32>, tensor<2x1xi32>)
  return
}

// -----

func.func @logits_residual(%x: tensor<2x8xf32>, %r: tensor<1x8xf32>, %w: tensor<8xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects the residual type 'tensor<1x8xf32>' to equal the input type 'tensor<2x8xf32>'}}
  %l, %i = norm.rms_logits %x, %w, %h residual(%r : tensor<1x8xf32>) eps = 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>, tensor<16x8xbf16>) -> (tensor<2x16xf32>, tensor<2x1xi32>)
  return
}

// -----

func.func @logits_one_candidate_result(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects no candidates, or candidate ids tensor<?xKxi32> and values tensor<?xKxf32> with 1 <= K <= vocab}}
  %l, %i, %c = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>, tensor<16x8xbf16>) -> (tensor<2x16xf32>, tensor<2x1xi32>, tensor<2x4xi32>)
  return
}

// -----

func.func @logits_more_candidates_than_vocab(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects no candidates, or candidate ids tensor<?xKxi32> and values tensor<?xKxf32> with 1 <= K <= vocab}}
  %l, %i, %c, %v = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>, tensor<16x8xbf16>) -> (tensor<2x16xf32>, tensor<2x1xi32>, tensor<2x17xi32>, tensor<2x17xf32>)
  return
}

// -----

func.func @logits_candidate_types(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %h: tensor<16x8xbf16>) {
  // expected-error @+1 {{'norm.rms_logits' op expects candidate ids of type 'tensor<2x4xi32>' and values of type 'tensor<2x4xf32>', got 'tensor<2x4xi32>' and 'tensor<1x4xf32>'}}
  %l, %i, %c, %v = norm.rms_logits %x, %w, %h eps = 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>, tensor<16x8xbf16>) -> (tensor<2x16xf32>, tensor<2x1xi32>, tensor<2x4xi32>, tensor<1x4xf32>)
  return
}
