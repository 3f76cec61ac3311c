#!/usr/bin/env python3
"""transformers (eager, and under torch.compile) on the same variant and GPU
as m2c-bench, for the ratio.

Usage: python3 peers.py PLAN.json OUT.json [--batches 1,32] [--context 1024] [--steps 10]
                        [--compile]

Builds MiniMaxM2ForCausalLM from the plan's config_json (the model m2c
compiled) in bf16 on the GPU and fills it with m2c's --random-weights values
(the seeded stream of runtime/weights/Weights.cpp, reproduced here in torch
and checked element-wise against a plain-Python copy of it), so both run the
same weights and route tokens to the same experts. Times a decode step at each batch after a
prefill of `context` tokens, with torch.cuda.synchronize around each step,
plus a cuBLAS bf16 GEMM at the prefill's GEMM shapes as the tensor-core
ceiling. --compile also times decode with a StaticCache under
torch.compile(mode="reduce-overhead") (Inductor kernels replayed as CUDA
graphs), after warm-up steps that compile; a failure is recorded, not fatal.
"""
import argparse
import json
import math
import struct
import sys
import time

import torch

# --------------------------------------------------------------------------
# m2c's --random-weights stream (runtime/weights/Weights.cpp): element 2p and
# 2p+1 are Box-Muller normals of splitmix64 draws 2p+1 and 2p+2 from a state
# hashed (FNV-1a) from the weight's binding, times a scale, plus a shift,
# rounded to the weight's type.
# --------------------------------------------------------------------------
MASK64 = (1 << 64) - 1
GAMMA = 0x9e3779b97f4a7c15


def fnv1a(text, seed=0):
    h = 0xcbf29ce484222325 ^ seed
    for c in text.encode():
        h = ((h ^ c) * 0x100000001b3) & MASK64
    return h


def stream_params(w):
    key = w["binding"] if "{e}" not in w["binding"] else w["symbol"]
    is_norm = key.endswith("layernorm.weight") or key.endswith("norm.weight")
    is_bias = key.endswith("e_score_correction_bias")
    if key == "model.embed_tokens.weight":
        scale = 1.0
    elif is_norm or is_bias:
        scale = 0.1
    else:
        scale = 1.0 / math.sqrt(w["shape"][-1])
    if key.endswith("block_sparse_moe.gate.weight"):
        scale *= 4.0
    return fnv1a(key), scale, 1.0 if is_norm else 0.0


def _signed(x):
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def _mix_python(x):
    z = x & MASK64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK64
    return z ^ (z >> 31)


def _f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def random_head_python(w, count):
    """The first `count` values (f32, before rounding to the weight's type)."""
    state, scale, shift = stream_params(w)
    out = []
    for p in range((count + 1) // 2):
        z1, z2 = _mix_python(state + (2 * p + 1) * GAMMA), _mix_python(state + (2 * p + 2) * GAMMA)
        u1 = ((z1 >> 11) + 1.0) * 2.0 ** -53
        u2 = (z2 >> 11) * 2.0 ** -53
        r = math.sqrt(-2.0 * math.log(u1))
        out += [_f32(r * math.cos(2 * math.pi * u2) * scale + shift),
                _f32(r * math.sin(2 * math.pi * u2) * scale + shift)]
    return out[:count]


def _lsr(z, k):
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix_torch(x):
    z = x
    z = (z ^ _lsr(z, 30)) * _signed(0xbf58476d1ce4e5b9)
    z = (z ^ _lsr(z, 27)) * _signed(0x94d049bb133111eb)
    return z ^ _lsr(z, 31)


def random_weight_torch(w, chunk=1 << 25):
    """The whole weight as f32 on the GPU (int64 arithmetic wraps like uint64)."""
    state, scale, shift = stream_params(w)
    n = math.prod(w["shape"])
    out = torch.empty(n + 1, dtype=torch.float32, device="cuda")
    for p0 in range(0, (n + 1) // 2, chunk):
        p = torch.arange(p0, min((n + 1) // 2, p0 + chunk), dtype=torch.int64, device="cuda")
        base = torch.full_like(p, _signed(state))
        z1 = _mix_torch(base + (2 * p + 1) * _signed(GAMMA))
        z2 = _mix_torch(base + (2 * p + 2) * _signed(GAMMA))
        u1 = (_lsr(z1, 11).double() + 1.0) * 2.0 ** -53
        u2 = _lsr(z2, 11).double() * 2.0 ** -53
        r = torch.sqrt(-2.0 * torch.log(u1))
        pair = torch.stack([r * torch.cos(2 * math.pi * u2), r * torch.sin(2 * math.pi * u2)], 1)
        out[2 * p0: 2 * p0 + 2 * p.numel()] = (pair * scale + shift).float().reshape(-1)
    return out[:n].view(w["shape"])


def load_m2c_random_weights(model, plan):
    """Copies every plan weight's random values into the model's parameters
    (experts stacked or packed as gate_up_proj); returns how many model
    parameters received no value."""
    named = dict(model.named_parameters())
    named.update(dict(model.named_buffers()))
    assigned = set()

    def put(key, value):
        target = named[key]
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(f"{key}: model shape {tuple(target.shape)}, m2c {tuple(value.shape)}")
        with torch.no_grad():
            target.copy_(value.to(target.dtype))
        assigned.add(key)

    def first(candidates):
        return next((c for c in candidates if c in named), None)

    experts = {}
    # A fused projection (q/k/v) draws each part's stream under its own name.
    tensors = []
    for w in plan["weights"]:
        if "parts" not in w:
            tensors.append(w)
            continue
        for part in w["parts"]:
            tensors.append(dict(w, symbol=part["binding"], binding=part["binding"],
                                shape=[part["rows"], w["shape"][1]]))
    for w in tensors:
        head = random_head_python(w, 6)
        values = random_weight_torch(w)
        got = values.reshape(-1)[:6].tolist()
        # cos/sin/log may differ from libm in a last double bit: allow that.
        if any(abs(a - b) > 1e-6 * max(1.0, abs(b)) for a, b in zip(got, head)):
            raise ValueError(f"{w['symbol']}: torch stream {got} != m2c stream {head}")
        if w["type"] == "bf16":
            values = values.bfloat16()
        b = w["binding"]
        if "{e}" in b:
            layer, which = b.split(".block_sparse_moe.experts.{e}.")
            experts.setdefault(layer, {})[which.split(".")[0]] = values
            continue
        key = first([b, b.replace("block_sparse_moe.", "mlp."),
                     b.replace("block_sparse_moe.e_score_correction_bias",
                               "mlp.gate.e_score_correction_bias"),
                     b.replace("block_sparse_moe.e_score_correction_bias",
                               "block_sparse_moe.gate.e_score_correction_bias")])
        if key is None:
            raise ValueError(f"no model parameter for {b}")
        put(key, values)
    for layer, mats in experts.items():
        packed = first([f"{layer}.mlp.experts.gate_up_proj",
                        f"{layer}.block_sparse_moe.experts.gate_up_proj"])
        if packed is not None:
            put(packed, torch.cat([mats["w1"], mats["w3"]], dim=1))
            put(packed.replace("gate_up_proj", "down_proj"), mats["w2"])
            continue
        for e in range(mats["w1"].shape[0]):
            for mine, theirs in (("w1", "gate_proj"), ("w3", "up_proj"), ("w2", "down_proj")):
                key = first([f"{layer}.block_sparse_moe.experts.{e}.{mine}.weight",
                             f"{layer}.mlp.experts.{e}.{theirs}.weight"])
                if key is None:
                    raise ValueError(f"no model parameter for {layer} expert {e} {mine}")
                put(key, mats[mine][e])
    params = dict(model.named_parameters())
    return sorted(k for k in params if k not in assigned)


def time_compiled(model, cfg, ids, context, steps):
    """Decode steps of torch.compile(model.forward, mode="reduce-overhead") on a
    StaticCache, after a prefill; the first 3 steps compile and are not timed."""
    from transformers import StaticCache
    batch = ids.shape[0]
    entry = {"batch": batch, "context": context, "mode": "reduce-overhead, StaticCache"}
    try:
        length = context + steps + 8
        try:
            cache = StaticCache(config=cfg, max_cache_len=length)
        except TypeError:
            cache = StaticCache(config=cfg, max_batch_size=batch, max_cache_len=length,
                                device="cuda", dtype=torch.bfloat16)
        out = model(input_ids=ids, past_key_values=cache, use_cache=True,
                    cache_position=torch.arange(context, device="cuda"))
        nxt = out.logits[:, -1:].argmax(-1)
        forward = torch.compile(model.forward, mode="reduce-overhead")
        start = time.time()
        # Each step timed two ways, as m2c-bench times m2c: host wall time
        # around a synchronized step (m2c-bench's "end to end") and CUDA
        # events around it (its "gpu"); medians of the steps after the 3
        # that compile.
        times, event_times = [], []
        for step in range(steps + 3):
            position = torch.tensor([context + step], device="cuda")
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            s = time.perf_counter()
            begin.record()
            out = forward(input_ids=nxt, past_key_values=cache, use_cache=True,
                          cache_position=position)
            nxt = out.logits[:, -1:].argmax(-1).clone()
            end.record()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - s)
            event_times.append(begin.elapsed_time(end) / 1e3)
        entry["compile_seconds"] = sum(times[:3])
        times = sorted(times[3:])
        event_times = sorted(event_times[3:])
        entry["ms"] = times[len(times) // 2] * 1e3
        entry["event_ms"] = event_times[len(event_times) // 2] * 1e3
        print(f"torch.compile decode: batch {batch}, context {context}: {entry['ms']:.2f} ms/step "
              f"(CUDA events {entry['event_ms']:.2f} ms) "
              f"(compiled in {entry['compile_seconds']:.0f} s, {time.time() - start:.0f} s in all)",
              flush=True)
    except Exception as e:  # noqa: BLE001 - the peer's failure is a result too
        entry["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        print(f"torch.compile decode: batch {batch}: FAILED {entry['error']}", flush=True)
    return entry


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("out")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    plan = json.load(open(args.plan))
    cfg_json = json.loads(plan["config_json"])
    from transformers import MiniMaxM2Config, MiniMaxM2ForCausalLM

    keep = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
            "rms_norm_eps", "num_local_experts", "num_experts_per_tok", "tie_word_embeddings"]
    base = {k: cfg_json[k] for k in keep if k in cfg_json}
    base.update(hidden_act="silu", bos_token_id=None, eos_token_id=None, pad_token_id=None)
    head_dim = cfg_json.get("head_dim", cfg_json["hidden_size"] // cfg_json["num_attention_heads"])
    rotary = cfg_json.get("rotary_dim", head_dim)
    cfg = MiniMaxM2Config(**base, rope_parameters={
        "rope_type": "default", "rope_theta": cfg_json.get("rope_theta", 1e6),
        "partial_rotary_factor": rotary / head_dim})
    result = {"peer": "transformers eager", "torch": torch.__version__,
              "device": torch.cuda.get_device_name(0), "decode": [], "gemm": []}
    t0 = time.time()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = MiniMaxM2ForCausalLM(cfg).eval()
    unset = load_m2c_random_weights(model, plan)
    torch.cuda.synchronize()
    result["build_seconds"] = time.time() - t0
    result["weights"] = "m2c --random-weights stream" + (f"; {len(unset)} parameters left at "
                                                        f"transformers' init: {unset[:4]}" if unset else "")
    print(f"transformers model built in {result['build_seconds']:.1f} s with {result['weights']}",
          flush=True)

    gen = torch.Generator(device="cuda").manual_seed(0)
    with torch.inference_mode():
        for batch in [int(b) for b in args.batches.split(",")]:
            ids = torch.randint(0, cfg.vocab_size, (batch, args.context), device="cuda",
                                generator=gen)
            out = model(input_ids=ids, use_cache=True)
            pkv = out.past_key_values
            nxt = out.logits[:, -1:].argmax(-1)
            times = []
            for _ in range(args.steps + 2):
                torch.cuda.synchronize()
                s = time.perf_counter()
                out = model(input_ids=nxt, past_key_values=pkv, use_cache=True)
                nxt = out.logits[:, -1:].argmax(-1)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - s)
            times = sorted(times[2:])
            ms = times[len(times) // 2] * 1e3
            print(f"transformers eager decode: batch {batch}, context {args.context}: {ms:.2f} ms/step",
                  flush=True)
            result["decode"].append({"batch": batch, "context": args.context, "ms": ms})
            del pkv, out
            torch.cuda.empty_cache()
            if args.compile:
                result.setdefault("compiled", []).append(
                    time_compiled(model, cfg, ids, args.context, args.steps))
                torch.cuda.empty_cache()

        # cuBLAS bf16 GEMMs at the prefill's shapes (T = 1024 tokens).
        H = cfg.hidden_size
        q = cfg.num_attention_heads * head_dim
        kv = cfg.num_key_value_heads * head_dim
        for n, k in [(q, H), (kv, H), (H, q), (cfg.intermediate_size, H)]:
            a = torch.randn(1024, k, device="cuda")
            w = torch.randn(n, k, device="cuda")
            for _ in range(3):
                a @ w.t()
            torch.cuda.synchronize()
            s = time.perf_counter()
            for _ in range(20):
                a @ w.t()
            torch.cuda.synchronize()
            us = (time.perf_counter() - s) / 20 * 1e6
            tflops = 2 * 1024 * n * k / (us * 1e-6) / 1e12
            print(f"cuBLAS bf16 GEMM 1024x{n}x{k}: {us:.1f} us, {tflops:.0f} TFLOP/s", flush=True)
            result["gemm"].append({"m": 1024, "n": n, "k": k, "us": us, "tflops": tflops})
    json.dump(result, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    sys.exit(main())
