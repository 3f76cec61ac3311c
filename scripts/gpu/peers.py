#!/usr/bin/env python3
"""transformers (eager, and under torch.compile) on the same variant and GPU
as m2c-bench, for the ratio.

Usage: python3 peers.py PLAN.json OUT.json [--batches 1,32] [--context 1024] [--steps 10]
                        [--compile]

Builds MiniMaxM2ForCausalLM from the plan's config_json (the model m2c
compiled) in bf16 on the GPU with transformers' own random initialisation:
the values differ from m2c's --random-weights (speed does not depend on
them, except through expert routing, uniform-ish in both), which is stated
wherever the figures are quoted. Times a decode step at each batch after a
prefill of `context` tokens, with torch.cuda.synchronize around each step,
plus a cuBLAS bf16 GEMM at the prefill's GEMM shapes as the tensor-core
ceiling. --compile also times decode with a StaticCache under
torch.compile(mode="reduce-overhead") (Inductor kernels replayed as CUDA
graphs), after warm-up steps that compile; a failure is recorded, not fatal.
"""
import argparse
import json
import sys
import time

import torch


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
        times = []
        for step in range(steps + 3):
            position = torch.tensor([context + step], device="cuda")
            torch.cuda.synchronize()
            s = time.perf_counter()
            out = forward(input_ids=nxt, past_key_values=cache, use_cache=True,
                          cache_position=position)
            nxt = out.logits[:, -1:].argmax(-1).clone()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - s)
        entry["compile_seconds"] = sum(times[:3])
        times = sorted(times[3:])
        entry["ms"] = times[len(times) // 2] * 1e3
        print(f"torch.compile decode: batch {batch}, context {context}: {entry['ms']:.2f} ms/step "
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
    torch.cuda.synchronize()
    result["build_seconds"] = time.time() - t0
    print(f"transformers model built in {result['build_seconds']:.1f} s", flush=True)

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
