#!/usr/bin/env python3
"""Generate golden-numerics checkpoints and reference outputs for m2c.

    python3 scripts/gpu/make_golden.py --out test/data/golden

writes two tiny MiniMax-M2 checkpoints in the Hugging Face layout that m2c
reads, plus reference outputs computed with transformers' MiniMaxM2ForCausalLM:

    DIR/bf16/   config.json, model-0000k-of-0000n.safetensors,
                model.safetensors.index.json, prompt_<i>_{ids,generated,logits}.npy
    DIR/fp8/    same, with F8_E4M3 block-quantised projections + *_scale_inv
    DIR/manifest.json

Reference: float32, TF32 off, eager attention, eager experts, manual greedy
loop (the full sequence is re-run each step with use_cache=False). The FP8
reference uses the dequantised weights W = float(fp8) * scale_inv[i//128, j//128]
assigned by hand into a float32 model (transformers' FP8 path is not used).

Every checkpoint is also checked against an independent float64
implementation of the model math written here from docs (minimax-m2.md), so a
mis-configured transformers model (full instead of partial RoPE, gate/up
swapped, zero routing bias, ...) fails loudly instead of producing a bad
golden. See docs/golden.md.

Needs: python >= 3.10, torch (with float8_e4m3fn), numpy, transformers with
MiniMaxM2ForCausalLM; safetensors is used if importable (a built-in writer
is the fallback). No network access is needed.
"""

import argparse
import copy
import datetime
import json
import math
import os
import platform
import re
import shutil
import struct
import sys
import time
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

T_START = time.time()


def log(msg=""):
    print(f"[{time.time() - T_START:7.2f}s] {msg}", flush=True)


class GoldenError(Exception):
    """A check failed: the golden files would be wrong, so stop."""


def check(cond, msg):
    if not cond:
        raise GoldenError(msg)


class Stage:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t = time.time()
        log(f"=== {self.name} ...")
        return self

    def __exit__(self, exc_type, exc, tb):
        dt = time.time() - self.t
        if exc_type is None:
            log(f"=== {self.name}: done in {dt:.2f}s")
        else:
            log(f"=== {self.name}: FAILED after {dt:.2f}s ({exc_type.__name__})")
        return False


try:
    import numpy as np
    import torch
except Exception as e:  # pragma: no cover
    print(f"error: this script needs numpy and torch: {e}", file=sys.stderr)
    sys.exit(2)

# --------------------------------------------------------------------------
# What to generate
# --------------------------------------------------------------------------

COMMON = dict(
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    num_local_experts=8,
    num_experts_per_tok=2,
    rope_theta=5e6,
    rms_norm_eps=1e-6,
    max_position_embeddings=2048,
)

SPECS = {
    # bf16: small dims, H*D == hidden.
    "bf16": dict(COMMON, vocab_size=512, hidden_size=128, head_dim=32, rotary_dim=16,
                 intermediate_size=96, fp8=False, base_seed=1000),
    # fp8: every quantised matrix has partial 128x128 edge blocks in both
    # dims (hidden 160 = 128+32, H*D 192 = 128+64, KV*D 96 < 128,
    # intermediate 144 = 128+16), and H*D != hidden as in the released model.
    "fp8": dict(COMMON, vocab_size=384, hidden_size=160, head_dim=48, rotary_dim=24,
                intermediate_size=144, fp8=True, base_seed=2000),
}

PROMPT_LENGTHS = (7, 19, 33)
NEW_TOKENS = 8
LOGIT_MARGIN_MIN = 1e-3      # top1 - top2 logit at every greedy step
ROUTER_MARGIN_MIN = 1e-4     # k-th minus (k+1)-th biased choice score, every token/layer
ROUTER_GATE_SCALE = 2.0      # router logits ~ N(0, 2^2): sigmoid scores spread, not saturated
BIAS_STD = 0.1               # e_score_correction_bias ~ 0.1 * N(0,1)
NORM_STD = 0.1               # norm weights ~ 1 + 0.1 * N(0,1)
FP8_BLOCK = 128
FP8_MAX = 448.0
REL_TOL = 1e-4               # what the C++ tests use; also our cross-check bound
SIZE_WARN_BYTES = 3_500_000
QUANT_CONFIG = {
    "quant_method": "fp8",
    "fmt": "float8_e4m3fn",
    "activation_scheme": "dynamic",
    "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
    "modules_to_not_convert": ["gate", "e_score_correction_bias", "lm_head"],
}

# --------------------------------------------------------------------------
# Safetensors writing / reading
# --------------------------------------------------------------------------

ST_DTYPE = {
    torch.float32: "F32",
    torch.bfloat16: "BF16",
    torch.float16: "F16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
}
if hasattr(torch, "float8_e4m3fn"):
    ST_DTYPE[torch.float8_e4m3fn] = "F8_E4M3"
ST_DTYPE_INV = {v: k for k, v in ST_DTYPE.items()}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes()


def write_safetensors_by_hand(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def write_safetensors(path, tensors):
    """Returns the writer used ('safetensors' or 'by-hand')."""
    try:
        from safetensors.torch import save_file
    except Exception as e:
        log(f"  safetensors not importable ({e}); writing by hand")
        write_safetensors_by_hand(path, tensors)
        return "by-hand"
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, path,
                  metadata={"format": "pt"})
        return "safetensors"
    except Exception as e:
        log(f"  safetensors.save_file failed ({type(e).__name__}: {e}); writing by hand")
        write_safetensors_by_hand(path, tensors)
        return "by-hand"


def read_safetensors(path):
    """Independent parser: name -> (dtype string, shape, raw bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    check(len(data) >= 8, f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    check(8 + n <= len(data), f"{path}: header length {n} exceeds file size {len(data)}")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    out = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        check(dt in ST_DTYPE_INV, f"{path}: {name}: unknown dtype {dt}")
        b, e = info["data_offsets"]
        numel = 1
        for s in info["shape"]:
            numel *= s
        item = torch.empty((), dtype=ST_DTYPE_INV[dt]).element_size()
        check(e - b == numel * item,
              f"{path}: {name}: data_offsets {b}..{e} hold {e - b} bytes, shape "
              f"{info['shape']} x {item} needs {numel * item}")
        check(0 <= b <= e <= len(body), f"{path}: {name}: data_offsets out of range")
        spans.append((b, e, name))
        out[name] = (dt, list(info["shape"]), body[b:e])
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        check(e0 <= b1, f"{path}: tensors {n0} and {n1} overlap")
    return out


def bytes_to_tensor(dt, shape, raw):
    u8 = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    return u8.view(ST_DTYPE_INV[dt]).reshape(shape).clone()


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------

class Spec:
    def __init__(self, name, d):
        self.name = name
        self.__dict__.update(d)
        self.H = self.num_attention_heads
        self.KV = self.num_key_value_heads
        self.D = self.head_dim
        self.E = self.num_local_experts
        self.K = self.num_experts_per_tok
        self.I = self.intermediate_size
        self.Hd = self.hidden_size
        self.V = self.vocab_size
        self.L = self.num_hidden_layers
        check(self.H % self.KV == 0, f"{name}: heads {self.H} not a multiple of kv heads {self.KV}")
        check(self.rotary_dim % 2 == 0 and self.rotary_dim <= self.D, f"{name}: bad rotary_dim")
        self.partial_rotary_factor = self.rotary_dim / self.D
        check(int(self.D * self.partial_rotary_factor) == self.rotary_dim,
              f"{name}: rotary_dim/head_dim = {self.partial_rotary_factor!r} does not round-trip "
              f"through int(head_dim * factor); pick dims whose ratio is exact")

    def dims(self):
        keys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "head_dim", "rotary_dim",
                "num_local_experts", "num_experts_per_tok", "rope_theta", "rms_norm_eps",
                "max_position_embeddings"]
        return {k: getattr(self, k) for k in keys}


def config_json(spec):
    """config.json in the released layout (rotary_dim + rope_theta at top level)."""
    c = {
        "architectures": ["MiniMaxM2ForCausalLM"],
        "model_type": "minimax_m2",
        "vocab_size": spec.V,
        "hidden_size": spec.Hd,
        "intermediate_size": spec.I,
        "num_hidden_layers": spec.L,
        "num_attention_heads": spec.H,
        "num_key_value_heads": spec.KV,
        "head_dim": spec.D,
        "rotary_dim": spec.rotary_dim,
        "rope_theta": spec.rope_theta,
        "max_position_embeddings": spec.max_position_embeddings,
        "rms_norm_eps": spec.rms_norm_eps,
        "hidden_act": "silu",
        "num_local_experts": spec.E,
        "num_experts_per_tok": spec.K,
        "scoring_func": "sigmoid",
        "use_routing_bias": True,
        "use_qk_norm": True,
        "qk_norm_type": "per_layer",
        "shared_intermediate_size": 0,
        "tie_word_embeddings": False,
        "attn_type_list": [1] * spec.L,
        "torch_dtype": "bfloat16",
        # Leftover keys of the released config; m2c must ignore them.
        "shared_moe_mode": "sigmoid",
        "layernorm_mlp_beta": 1.0,
    }
    if spec.fp8:
        c["quantization_config"] = copy.deepcopy(QUANT_CONFIG)
    return c


def quantize_fp8_blockwise(w):
    """w: fp32 [out, in] -> (fp8 [out, in], scale_inv fp32 [ceil(out/128), ceil(in/128)]).
    Per block: scale_inv = amax/448 (1 if the block is all zero), fp8 = e4m3fn(W / scale_inv)."""
    out_f, in_f = w.shape
    nr, nc = -(-out_f // FP8_BLOCK), -(-in_f // FP8_BLOCK)
    s = torch.empty(nr, nc, dtype=torch.float32)
    for bi in range(nr):
        for bj in range(nc):
            blk = w[bi * FP8_BLOCK:(bi + 1) * FP8_BLOCK, bj * FP8_BLOCK:(bj + 1) * FP8_BLOCK]
            amax = float(blk.abs().max())
            s[bi, bj] = amax / FP8_MAX if amax > 0 else 1.0
    scaled = (w / expand_scale(s, out_f, in_f)).clamp(-FP8_MAX, FP8_MAX)
    q = scaled.to(torch.float8_e4m3fn)
    check(torch.isfinite(q.to(torch.float32)).all().item(), "fp8 quantisation produced NaN/Inf")
    err = float((dequantize_fp8(q, s) - w).abs().max() / w.abs().max())
    check(err < 0.07, f"fp8 round trip error {err:.3g} is implausibly large")
    return q, s


def expand_scale(s, out_f, in_f):
    return (s.repeat_interleave(FP8_BLOCK, 0)[:out_f]
             .repeat_interleave(FP8_BLOCK, 1)[:, :in_f])


def dequantize_fp8(q, s):
    out_f, in_f = q.shape
    check(list(s.shape) == [-(-out_f // FP8_BLOCK), -(-in_f // FP8_BLOCK)],
          f"scale_inv shape {list(s.shape)} does not fit weight {list(q.shape)}")
    return q.to(torch.float32) * expand_scale(s.to(torch.float32), out_f, in_f)


def make_checkpoint(spec, seed):
    """Returns (stored tensors in file order, prompts). All draws from one CPU generator."""
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float32)

    master = {}   # name -> (fp32 value, kind) ; kind in {"linear", "plain", "f32"}

    def linear(name, out_f, in_f, scale=1.0):
        master[name] = (randn(out_f, in_f) * (scale / math.sqrt(in_f)), "linear")

    def norm(name, n):
        master[name] = (1.0 + NORM_STD * randn(n), "plain")

    V, Hd, H, KV, D, E, I = spec.V, spec.Hd, spec.H, spec.KV, spec.D, spec.E, spec.I
    master["model.embed_tokens.weight"] = (randn(V, Hd), "plain")
    for l in range(spec.L):
        p = f"model.layers.{l}."
        norm(p + "input_layernorm.weight", Hd)
        linear(p + "self_attn.q_proj.weight", H * D, Hd)
        linear(p + "self_attn.k_proj.weight", KV * D, Hd)
        linear(p + "self_attn.v_proj.weight", KV * D, Hd)
        linear(p + "self_attn.o_proj.weight", Hd, H * D)
        norm(p + "self_attn.q_norm.weight", H * D)
        norm(p + "self_attn.k_norm.weight", KV * D)
        norm(p + "post_attention_layernorm.weight", Hd)
        master[p + "block_sparse_moe.gate.weight"] = (
            randn(E, Hd) * (ROUTER_GATE_SCALE / math.sqrt(Hd)), "plain")
        master[p + "block_sparse_moe.e_score_correction_bias"] = (BIAS_STD * randn(E), "f32")
        for e in range(E):
            q = p + f"block_sparse_moe.experts.{e}."
            linear(q + "w1.weight", I, Hd)
            linear(q + "w2.weight", Hd, I)
            linear(q + "w3.weight", I, Hd)
    norm("model.norm.weight", Hd)
    linear("lm_head.weight", V, Hd)
    prompts = [torch.randint(0, V, (n,), generator=g, dtype=torch.int64).tolist()
               for n in PROMPT_LENGTHS]

    stored = {}
    for name, (w, kind) in master.items():
        if kind == "f32":
            stored[name] = w.to(torch.float32).contiguous()
        elif kind == "linear" and spec.fp8 and name != "lm_head.weight":
            q, s = quantize_fp8_blockwise(w)
            stored[name] = q
            stored[name + "_scale_inv"] = s
        else:
            stored[name] = w.to(torch.bfloat16).contiguous()
    return stored, prompts


def shard_names(names, sizes, n_target=3):
    total = sum(sizes[n] for n in names)
    target = total / n_target
    shards, cur, cur_bytes = [], [], 0
    for n in names:
        if cur and cur_bytes >= target and len(shards) < n_target - 1:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(n)
        cur_bytes += sizes[n]
    if cur:
        shards.append(cur)
    return shards


def write_checkpoint(d, spec, stored):
    os.makedirs(d, exist_ok=True)
    names = list(stored.keys())
    sizes = {n: stored[n].numel() * stored[n].element_size() for n in names}
    shards = shard_names(names, sizes)
    n = len(shards)
    check(2 <= n <= 3, f"expected 2-3 shards, got {n}")
    weight_map, writers = {}, set()
    for k, shard in enumerate(shards, start=1):
        fname = f"model-{k:05d}-of-{n:05d}.safetensors"
        writers.add(write_safetensors(os.path.join(d, fname), {x: stored[x] for x in shard}))
        for x in shard:
            weight_map[x] = fname
    index = {"metadata": {"total_size": sum(sizes.values())},
             "weight_map": {k: weight_map[k] for k in sorted(weight_map)}}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config_json(spec), f, indent=2)
        f.write("\n")
    return n, sorted(writers)


def read_checkpoint(d, stored):
    """Reads the checkpoint back from disk with our own parser, checks it is
    byte-identical to `stored` and returns name -> tensor (as read)."""
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        index = json.load(f)
    wm = index["weight_map"]
    check(set(wm) == set(stored),
          f"index weight_map differs from written tensors: missing "
          f"{sorted(set(stored) - set(wm))[:5]}, extra {sorted(set(wm) - set(stored))[:5]}")
    total = 0
    got = {}
    for fname in sorted(set(wm.values())):
        parsed = read_safetensors(os.path.join(d, fname))
        listed = {k for k, v in wm.items() if v == fname}
        check(set(parsed) == listed, f"{fname}: tensors differ from index")
        for name, (dt, shape, raw) in parsed.items():
            want = stored[name]
            check(dt == ST_DTYPE[want.dtype], f"{fname}: {name}: dtype {dt}, wrote {want.dtype}")
            check(shape == list(want.shape), f"{fname}: {name}: shape {shape}, wrote {list(want.shape)}")
            check(raw == tensor_bytes(want), f"{fname}: {name}: bytes differ from what was written")
            total += len(raw)
            got[name] = bytes_to_tensor(dt, shape, raw)
    check(index["metadata"]["total_size"] == total,
          f"index total_size {index['metadata']['total_size']} != {total}")
    # Cross-check with the official reader when present.
    try:
        from safetensors import safe_open
    except Exception:
        safe_open = None
    if safe_open is not None:
        for fname in sorted(set(wm.values())):
            with safe_open(os.path.join(d, fname), framework="pt") as f:
                for name in f.keys():
                    t = f.get_tensor(name)
                    check(t.dtype == got[name].dtype and tensor_bytes(t) == tensor_bytes(got[name]),
                          f"{fname}: {name}: safetensors.safe_open disagrees with our parser")
    return got


def reference_weights(spec, disk):
    """fp32 weights under original names, from the on-disk tensors."""
    w = {}
    for name, t in disk.items():
        if name.endswith("_scale_inv"):
            continue
        if t.dtype == getattr(torch, "float8_e4m3fn", None):
            sname = name + "_scale_inv"
            check(sname in disk, f"{name}: F8 weight without {sname}")
            check(disk[sname].dtype == torch.float32, f"{sname}: not F32")
            w[name] = dequantize_fp8(t, disk[sname])
        else:
            w[name] = t.to(torch.float32)
        check(torch.isfinite(w[name]).all().item(), f"{name}: non-finite values")
    return w


# --------------------------------------------------------------------------
# Independent float64 reference (model math from docs/minimax-m2.md)
# --------------------------------------------------------------------------

def ref_forward(spec, W, ids):
    """Returns (logits [T, V] f64, min router margin, #bias-changed, #decisions, topk per layer)."""
    T = len(ids)
    H, KV, D, E, K, rd = spec.H, spec.KV, spec.D, spec.E, spec.K, spec.rotary_dim
    eps = spec.rms_norm_eps
    w = lambda n: W[n]  # noqa: E731

    def rms(z, g):
        return z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + eps) * g

    half = rd // 2
    pos = torch.arange(T, dtype=torch.float64)
    inv = 1.0 / (spec.rope_theta ** (torch.arange(0, rd, 2, dtype=torch.float64) / rd))
    ang = pos[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]

    def rope(t):
        r, rest = t[..., :rd], t[..., rd:]
        rot = torch.cat([-r[..., half:], r[..., :half]], -1)
        return torch.cat([r * cos + rot * sin, rest], -1)

    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    x = w("model.embed_tokens.weight")[torch.tensor(ids, dtype=torch.long)]
    min_margin = float("inf")
    changed = decisions = 0
    topk = []
    for l in range(spec.L):
        p = f"model.layers.{l}."
        h = rms(x, w(p + "input_layernorm.weight"))
        q = rms(h @ w(p + "self_attn.q_proj.weight").T, w(p + "self_attn.q_norm.weight"))
        k = rms(h @ w(p + "self_attn.k_proj.weight").T, w(p + "self_attn.k_norm.weight"))
        v = h @ w(p + "self_attn.v_proj.weight").T
        q = rope(q.view(T, H, D))
        k = rope(k.view(T, KV, D))
        v = v.view(T, KV, D)
        k = k.repeat_interleave(H // KV, dim=1)  # query head h reads kv head h // (H/KV)
        v = v.repeat_interleave(H // KV, dim=1)
        att = torch.einsum("thd,shd->hts", q, k) / math.sqrt(D) + mask
        att = att.softmax(-1)
        o = torch.einsum("hts,shd->thd", att, v).reshape(T, H * D)
        x = x + o @ w(p + "self_attn.o_proj.weight").T

        h = rms(x, w(p + "post_attention_layernorm.weight"))
        s = torch.sigmoid(h @ w(p + "block_sparse_moe.gate.weight").T)
        choice = s + w(p + "block_sparse_moe.e_score_correction_bias")
        vals, order = torch.sort(choice, dim=-1, descending=True, stable=True)
        sel = order[:, :K]
        if K < E:
            min_margin = min(min_margin, float((vals[:, K - 1] - vals[:, K]).min()))
        unb = torch.sort(s, dim=-1, descending=True, stable=True).indices[:, :K]
        for t in range(T):
            decisions += 1
            if set(sel[t].tolist()) != set(unb[t].tolist()):
                changed += 1
        topk.append(sel.clone())
        wts = s.gather(1, sel)
        wts = wts / wts.sum(-1, keepdim=True)
        out = torch.zeros_like(h)
        for t in range(T):
            for j in range(K):
                e = int(sel[t, j])
                ep = p + f"block_sparse_moe.experts.{e}."
                g1 = w(ep + "w1.weight") @ h[t]
                g3 = w(ep + "w3.weight") @ h[t]
                out[t] += wts[t, j] * (w(ep + "w2.weight") @ (torch.nn.functional.silu(g1) * g3))
        x = x + out
    logits = rms(x, w("model.norm.weight")) @ w("lm_head.weight").T
    return logits, min_margin, changed, decisions, topk


# --------------------------------------------------------------------------
# transformers side
# --------------------------------------------------------------------------

_PRINTED = set()


def print_once(key, text):
    if key not in _PRINTED:
        _PRINTED.add(key)
        print(text, flush=True)


def import_transformers():
    import transformers
    from transformers import MiniMaxM2Config, MiniMaxM2ForCausalLM
    return transformers, MiniMaxM2Config, MiniMaxM2ForCausalLM


def _set_eager(cfg, what):
    """Best effort: make config object `cfg` say 'eager' for `what` ('attn'/'experts')."""
    for attr in (f"_{what}_implementation", f"_{what}_implementation_internal"):
        try:
            setattr(cfg, attr, "eager")
        except Exception:
            pass


def force_eager(model):
    """Eager attention and eager (per-expert loop) MoE, on every config object the
    modules read (normally one shared object)."""
    for meth in ("set_attn_implementation", "set_experts_implementation"):
        fn = getattr(model, meth, None)
        if fn is None:
            log(f"  note: model has no {meth}()")
            continue
        try:
            fn("eager")
        except Exception as e:
            log(f"  warning: {meth}('eager') raised {type(e).__name__}: {e}")
    cfgs = {id(model.config): model.config}
    for mod in model.modules():
        c = getattr(mod, "config", None)
        if c is not None and hasattr(c, "to_dict"):
            cfgs[id(c)] = c
    attn_seen, experts_seen = set(), set()
    for c in cfgs.values():
        if getattr(c, "_attn_implementation", None) != "eager":
            _set_eager(c, "attn")
        attn_seen.add(getattr(c, "_attn_implementation", None))
        if getattr(c, "_experts_implementation", "absent") not in ("eager", "absent"):
            _set_eager(c, "experts")
        experts_seen.add(getattr(c, "_experts_implementation", "absent"))
    check(attn_seen == {"eager"},
          f"attention implementation is {sorted(map(str, attn_seen))}, wanted 'eager'")
    check(experts_seen <= {"eager", "absent"},
          f"experts implementation is {sorted(map(str, experts_seen))}, wanted 'eager'")
    if len(cfgs) > 1:
        log(f"  note: modules hold {len(cfgs)} distinct config objects; all set to eager")
    return "eager", ("eager" if "eager" in experts_seen else "absent")


def is_computed_buffer(key):
    """State-dict entries computed from the config (checked by check_rotary)."""
    return "rotary_emb." in key


def check_rotary(model, spec):
    """Fails unless the model's RoPE rotates exactly rotary_dim dims with the right theta."""
    rot = getattr(getattr(model, "model", None), "rotary_emb", None)
    check(rot is not None, "model.model.rotary_emb not found")
    inv = getattr(rot, "inv_freq", None)
    check(inv is not None, "model.model.rotary_emb.inv_freq not found")
    inv = inv.detach().float().cpu()
    check(inv.numel() == spec.rotary_dim // 2,
          f"rotary_emb.inv_freq has {inv.numel()} entries, expected rotary_dim/2 = "
          f"{spec.rotary_dim // 2}: transformers would rotate {2 * inv.numel()} of "
          f"{spec.D} dims instead of {spec.rotary_dim}")
    rd = spec.rotary_dim
    want = 1.0 / (spec.rope_theta ** (torch.arange(0, rd, 2, dtype=torch.float64) / rd))
    rel = float(((inv.double() - want).abs() / want).max())
    check(rel < 1e-5, f"rotary_emb.inv_freq differs from theta={spec.rope_theta} by rel {rel:.3g}: "
                      f"got {inv.tolist()}, want {want.tolist()}")
    scaling = getattr(rot, "attention_scaling", 1.0)
    check(abs(float(scaling) - 1.0) < 1e-12, f"rotary attention_scaling is {scaling}, expected 1.0")


def build_hf_config(spec, MiniMaxM2Config, MiniMaxM2ForCausalLM):
    """Tries the ways transformers may spell partial RoPE; returns the first config
    whose model really rotates rotary_dim dims."""
    fields = getattr(MiniMaxM2Config, "__dataclass_fields__", None)
    if fields:
        print_once("cfg-fields", "  MiniMaxM2Config fields: " + ", ".join(sorted(fields)))
    else:
        import inspect
        try:
            print_once("cfg-fields", f"  MiniMaxM2Config.__init__{inspect.signature(MiniMaxM2Config.__init__)}")
        except Exception:
            pass
    base = dict(
        vocab_size=spec.V, hidden_size=spec.Hd, intermediate_size=spec.I,
        num_hidden_layers=spec.L, num_attention_heads=spec.H, num_key_value_heads=spec.KV,
        head_dim=spec.D, hidden_act="silu", max_position_embeddings=spec.max_position_embeddings,
        rms_norm_eps=spec.rms_norm_eps, tie_word_embeddings=False,
        num_experts_per_tok=spec.K, num_local_experts=spec.E,
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
        router_jitter_noise=0.0, attention_dropout=0.0,
    )
    f, theta = spec.partial_rotary_factor, spec.rope_theta
    attempts = [
        ("rope_parameters={rope_type, rope_theta, partial_rotary_factor}",
         dict(rope_parameters={"rope_type": "default", "rope_theta": theta,
                               "partial_rotary_factor": f})),
        ("rope_parameters={rope_type, rope_theta} + partial_rotary_factor kwarg",
         dict(rope_parameters={"rope_type": "default", "rope_theta": theta},
              partial_rotary_factor=f)),
        ("rope_theta + partial_rotary_factor kwargs",
         dict(rope_theta=theta, partial_rotary_factor=f)),
    ]
    errors = []
    for desc, extra in attempts:
        try:
            cfg = MiniMaxM2Config(**base, **extra)
            check(getattr(cfg, "quantization_config", None) is None,
                  "reference config unexpectedly has quantization_config")
            model = MiniMaxM2ForCausalLM(copy.deepcopy(cfg))
            check_rotary(model, spec)
            del model
            log(f"  config variant OK: {desc}")
            return cfg, desc
        except Exception as e:
            msg = f"{desc}: {type(e).__name__}: {e}"
            errors.append(msg)
            log(f"  config variant rejected: {msg}")
    raise GoldenError("no MiniMaxM2Config spelling gave partial RoPE:\n  " + "\n  ".join(errors))


def hf_expected_state(spec, sd_shapes, W):
    """Maps original-name fp32 weights onto the model's state-dict keys
    (packed or per-expert experts). Returns (key -> tensor, layout string)."""
    keys = {k for k in sd_shapes if not is_computed_buffer(k)}
    exp = {}

    def put(k, t):
        check(k in keys, f"model has no state-dict key {k!r}")
        check(k not in exp, f"state-dict key {k!r} assigned twice")
        check(tuple(sd_shapes[k]) == tuple(t.shape),
              f"{k}: model shape {tuple(sd_shapes[k])}, weight shape {tuple(t.shape)}")
        exp[k] = t

    def first(cands, what):
        for c in cands:
            if c in keys:
                return c
        raise GoldenError(f"none of {cands} in the model ({what})")

    for n in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"):
        put(n, W[n])
    E, I, Hd = spec.E, spec.I, spec.Hd
    layouts = set()
    for l in range(spec.L):
        p = f"model.layers.{l}."
        for n in ("input_layernorm.weight", "post_attention_layernorm.weight",
                  "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                  "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                  "self_attn.q_norm.weight", "self_attn.k_norm.weight"):
            put(p + n, W[p + n])
        put(first([p + "mlp.gate.weight", p + "block_sparse_moe.gate.weight"], "router"),
            W[p + "block_sparse_moe.gate.weight"])
        put(first([p + "mlp.e_score_correction_bias", p + "block_sparse_moe.e_score_correction_bias",
                   p + "mlp.gate.e_score_correction_bias",
                   p + "block_sparse_moe.gate.e_score_correction_bias"], "routing bias"),
            W[p + "block_sparse_moe.e_score_correction_bias"])
        src = lambda e, m: W[p + f"block_sparse_moe.experts.{e}.{m}.weight"]  # noqa: E731
        gu_key, dn_key = p + "mlp.experts.gate_up_proj", p + "mlp.experts.down_proj"
        if gu_key in keys or dn_key in keys:
            w1 = torch.stack([src(e, "w1") for e in range(E)])   # [E, I, Hd]
            w3 = torch.stack([src(e, "w3") for e in range(E)])
            w2 = torch.stack([src(e, "w2") for e in range(E)])   # [E, Hd, I]
            gu = torch.cat([w1, w3], dim=1)                      # [E, 2I, Hd], gate first
            check(Hd != 2 * I and Hd != I, "packed layout ambiguous for these dims")
            gshape = tuple(sd_shapes.get(gu_key, ()))
            if gshape == (E, 2 * I, Hd):
                put(gu_key, gu)
                layouts.add("packed [E,2I,Hd]/[E,Hd,I]")
            elif gshape == (E, Hd, 2 * I):
                put(gu_key, gu.transpose(1, 2).contiguous())
                layouts.add("packed transposed [E,Hd,2I]/[E,I,Hd]")
            else:
                raise GoldenError(f"{gu_key}: unexpected shape {gshape}")
            dshape = tuple(sd_shapes.get(dn_key, ()))
            if dshape == (E, Hd, I):
                put(dn_key, w2)
            elif dshape == (E, I, Hd):
                put(dn_key, w2.transpose(1, 2).contiguous())
            else:
                raise GoldenError(f"{dn_key}: unexpected shape {dshape}")
        else:
            found = False
            for base in (p + "block_sparse_moe.experts.", p + "mlp.experts."):
                for names in (("w1", "w2", "w3"), ("gate_proj", "down_proj", "up_proj")):
                    if f"{base}0.{names[0]}.weight" in keys:
                        for e in range(E):
                            for mine, theirs in zip(("w1", "w2", "w3"), names):
                                put(f"{base}{e}.{theirs}.weight", src(e, mine))
                        layouts.add(f"per-expert {base}N.{{{','.join(names)}}}")
                        found = True
                        break
                if found:
                    break
            if not found:
                near = sorted(k for k in keys if k.startswith(p) and "expert" in k)
                raise GoldenError(f"layer {l}: unknown expert layout; expert keys: {near[:10]}")
    missing = sorted(keys - set(exp))
    check(not missing, f"model state-dict keys with no weight assigned (would stay random): {missing}")
    return exp, " + ".join(sorted(layouts))


def verify_model_weights(model, exp, what):
    sd = {k: v for k, v in model.state_dict().items() if not is_computed_buffer(k)}
    check(set(sd) == set(exp),
          f"{what}: state-dict keys differ from expected: missing {sorted(set(exp) - set(sd))[:8]}, "
          f"extra {sorted(set(sd) - set(exp))[:8]}")
    worst = (0.0, None)
    for k, t in exp.items():
        got = sd[k]
        check(got.dtype == torch.float32, f"{what}: {k} has dtype {got.dtype}, expected float32")
        d = float((got.detach().float().cpu() - t.float()).abs().max())
        if d > worst[0]:
            worst = (d, k)
    check(worst[0] == 0.0, f"{what}: weights differ from the checkpoint: max abs diff "
                           f"{worst[0]:.6g} at {worst[1]}")
    lm = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if lm is not None and emb is not None:
        check(lm.weight.data_ptr() != emb.weight.data_ptr(), f"{what}: lm_head is tied to embed_tokens")


def assign_weights(model, exp):
    named = dict(model.named_parameters())
    named.update(dict(model.named_buffers()))
    with torch.no_grad():
        for k, t in exp.items():
            check(k in named, f"{k} is in the state dict but not a parameter/buffer (tied?)")
            tgt = named[k]
            check(tuple(tgt.shape) == tuple(t.shape), f"{k}: shape {tuple(tgt.shape)} vs {tuple(t.shape)}")
            tgt.copy_(t.to(dtype=tgt.dtype, device=tgt.device))


def print_state_dict_once(model, spec):
    sd = model.state_dict()
    print_once("sd-keys-" + spec.name,
               f"  transformers state-dict keys ({spec.name}, {len(sd)} entries):\n" +
               "\n".join(f"    {k} {tuple(v.shape)} {v.dtype}" for k, v in sd.items()))


def load_hf_model(spec, cfg, ckpt_dir, W, MiniMaxM2ForCausalLM, try_from_pretrained):
    """Returns (model on CPU in fp32, description dict)."""
    if try_from_pretrained:
        kw_sets = [
            dict(dtype=torch.float32, attn_implementation="eager", experts_implementation="eager"),
            dict(dtype=torch.float32, attn_implementation="eager"),
            dict(torch_dtype=torch.float32, attn_implementation="eager"),
        ]
        for kw in kw_sets:
            try:
                res = MiniMaxM2ForCausalLM.from_pretrained(
                    ckpt_dir, config=copy.deepcopy(cfg), output_loading_info=True,
                    local_files_only=True, **kw)
                model, info = res if isinstance(res, tuple) else (res, {})
                model = model.to("cpu").float().eval()
                info_s = {k: (sorted(v)[:8] if isinstance(v, (set, list)) else str(v))
                          for k, v in (info or {}).items() if v}
                if info_s:
                    log(f"  from_pretrained loading info: {info_s}")
                attn, experts = force_eager(model)
                print_state_dict_once(model, spec)
                check_rotary(model, spec)
                sd_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
                exp, layout = hf_expected_state(spec, sd_shapes, W)
                verify_model_weights(model, exp, "from_pretrained")
                log(f"  from_pretrained({', '.join(sorted(kw))}) OK; weights equal the checkpoint "
                    f"(max abs diff 0); expert layout: {layout}")
                return model, dict(loader="from_pretrained", attn=attn, experts=experts, layout=layout)
            except Exception as e:
                log(f"  from_pretrained({', '.join(sorted(kw))}) not usable: {type(e).__name__}: "
                    f"{str(e).splitlines()[0][:300] if str(e) else ''}")
                if not isinstance(e, TypeError):  # TypeError: an unknown keyword; try the next set
                    break
        log("  falling back to manual weight assignment")
    torch.manual_seed(0)  # the random init is overwritten; seed only for tidiness
    model = MiniMaxM2ForCausalLM(copy.deepcopy(cfg)).to("cpu").float().eval()
    attn, experts = force_eager(model)
    check_rotary(model, spec)
    print_state_dict_once(model, spec)
    sd_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    exp, layout = hf_expected_state(spec, sd_shapes, W)
    assign_weights(model, exp)
    verify_model_weights(model, exp, "manual assignment")
    log(f"  manual assignment OK: all {len(exp)} state-dict entries set, equal to the checkpoint; "
        f"expert layout: {layout}")
    return model, dict(loader="manual", attn=attn, experts=experts, layout=layout)


@torch.no_grad()
def hf_greedy(model, prompt, n, device):
    ids = list(prompt)
    rows = []
    for _ in range(n):
        x = torch.tensor([ids], dtype=torch.long, device=device)
        out = model(input_ids=x, use_cache=False)
        row = out.logits[0, -1].detach().to(torch.float32).cpu()
        check(torch.isfinite(row).all().item(), "non-finite logits from transformers")
        ids.append(int(torch.argmax(row)))
        rows.append(row)
    return ids[len(prompt):], torch.stack(rows)


@torch.no_grad()
def hf_router_topk(model, seq, spec):
    """Forward with hooks on the routers; returns {layer: topk index [T,K]} or None."""
    got, hooks = {}, []
    pat = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:mlp|block_sparse_moe)\.gate$")

    def make(layer):
        def hook(_mod, _inp, out):
            outs = out if isinstance(out, (tuple, list)) else (out,)
            for o in outs:
                if torch.is_tensor(o) and not o.is_floating_point() and o.dim() == 2 \
                        and o.shape[-1] == spec.K:
                    got[layer] = o.detach().cpu()
        return hook

    for name, mod in model.named_modules():
        m = pat.search(name)
        if m:
            hooks.append(mod.register_forward_hook(make(int(m.group(1)))))
    try:
        dev = next(model.parameters()).device
        model(input_ids=torch.tensor([seq], dtype=torch.long, device=dev), use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    if len(got) != spec.L:
        return None
    return got


def rel_err(a, b):
    """||a - b||_2 / ||b||_2 over the vocabulary, as test/golden/GoldenTest.cpp computes it."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def logit_margin(rows):
    top2 = rows.double().topk(2, dim=-1).values
    return float((top2[:, 0] - top2[:, 1]).min())


# --------------------------------------------------------------------------
# Main flow
# --------------------------------------------------------------------------

def safe_rmtree(path, root):
    path, root = os.path.abspath(path), os.path.abspath(root)
    check(path.startswith(root + os.sep), f"refusing to delete {path} outside {root}")
    if os.path.isdir(path):
        shutil.rmtree(path)


def try_seed(spec, seed, out_dir, hf, args, golden_device):
    """One attempt. Returns (accepted, result dict, model)."""
    _, MiniMaxM2Config, MiniMaxM2ForCausalLM = hf
    work = os.path.join(out_dir, f".work-{spec.name}-seed{seed}")
    safe_rmtree(work, out_dir)
    stored, prompts = make_checkpoint(spec, seed)
    nshards, writers = write_checkpoint(work, spec, stored)
    disk = read_checkpoint(work, stored)
    log(f"  seed {seed}: wrote {len(stored)} tensors in {nshards} shards ({'/'.join(writers)}), "
        f"read back byte-identical")
    W = reference_weights(spec, disk)

    cfg, cfg_variant = args.cfg_cache.get(spec.name) or (None, None)
    if cfg is None:
        cfg, cfg_variant = build_hf_config(spec, MiniMaxM2Config, MiniMaxM2ForCausalLM)
        args.cfg_cache[spec.name] = (cfg, cfg_variant)
        print_once("cfg-" + spec.name, f"  transformers config object ({spec.name}):\n{cfg}")

    use_fp = not spec.fp8 and args.from_pretrained_ok.get(spec.name, True)
    model, loadinfo = load_hf_model(spec, cfg, work, W, MiniMaxM2ForCausalLM,
                                    try_from_pretrained=use_fp)
    if use_fp:
        args.from_pretrained_ok[spec.name] = loadinfo["loader"] == "from_pretrained"
    model = model.to(golden_device)

    W64 = {k: v.double() for k, v in W.items()}
    res = dict(seed=seed, prompts=[], loader=loadinfo, cfg_variant=cfg_variant, shards=nshards,
               writers=writers)
    min_lm, min_rm, changed, decisions, worst_rel = float("inf"), float("inf"), 0, 0, 0.0
    ref_ids_ok, hook_state = True, "ok"
    for i, prompt in enumerate(prompts):
        gen, rows = hf_greedy(model, prompt, NEW_TOKENS, golden_device)
        seq = prompt + gen[:-1]          # every token the model is fed
        rlog, rmargin, ch, dec, rtopk = ref_forward(spec, W64, seq)
        ref_rows = rlog[len(prompt) - 1:]
        check(ref_rows.shape == rows.shape, f"internal: ref rows {tuple(ref_rows.shape)} vs {tuple(rows.shape)}")
        per_step = [rel_err(rows[j], ref_rows[j]) for j in range(NEW_TOKENS)]
        ref_gen = [int(torch.argmax(ref_rows[j])) for j in range(NEW_TOKENS)]
        if ref_gen != gen:
            ref_ids_ok = False
        lm = logit_margin(rows)
        min_lm, min_rm = min(min_lm, lm), min(min_rm, rmargin)
        changed, decisions = changed + ch, decisions + dec
        worst_rel = max(worst_rel, max(per_step))
        hk = hf_router_topk(model, seq, spec)
        if hk is None:
            hook_state = "skipped (router output has no [T,K] index tensor)"
        else:
            for l in range(spec.L):
                a = [set(r) for r in hk[l].reshape(len(seq), spec.K).tolist()]
                b = [set(r) for r in rtopk[l].tolist()]
                nbad = sum(x != y for x, y in zip(a, b))
                if nbad:
                    hook_state = f"MISMATCH: layer {l}: {nbad}/{len(seq)} tokens chose other experts"
        res["prompts"].append(dict(index=i, length=len(prompt), ids=prompt, generated=gen,
                                   logits=rows, min_logit_margin=lm, min_router_margin=rmargin,
                                   max_rel_err_vs_fp64=max(per_step)))
        log(f"  seed {seed} prompt {i} (len {len(prompt)}): generated {gen}; logit margin {lm:.4g}; "
            f"router margin {rmargin:.4g}; rel err vs fp64 ref {max(per_step):.3g}")
    res.update(min_logit_margin=min_lm, min_router_margin=min_rm,
               bias_changed=changed, decisions=decisions, max_rel_err_vs_fp64=worst_rel,
               ref_ids_match=ref_ids_ok, router_hook=hook_state)

    reasons = []
    if not (min_lm >= LOGIT_MARGIN_MIN):
        reasons.append(f"logit margin {min_lm:.3g} < {LOGIT_MARGIN_MIN}")
    if not (min_rm >= ROUTER_MARGIN_MIN):
        reasons.append(f"router margin {min_rm:.3g} < {ROUTER_MARGIN_MIN}")
    if reasons:
        log(f"  seed {seed} rejected: {'; '.join(reasons)}")
        res["rejected"] = "; ".join(reasons)
        safe_rmtree(work, out_dir)
        return False, res, None

    # Margins are comfortable, so any disagreement below is a real bug.
    check(ref_ids_ok, f"{spec.name} seed {seed}: transformers and the independent fp64 reference "
                      f"chose different greedy tokens (see log above)")
    check(worst_rel <= REL_TOL,
          f"{spec.name} seed {seed}: transformers logits differ from the independent fp64 reference "
          f"by rel {worst_rel:.3g} > {REL_TOL}; the transformers model is not computing MiniMax-M2 "
          f"as documented (RoPE? QK-norm? routing?)")
    check(not hook_state.startswith("MISMATCH"), f"{spec.name} seed {seed}: router {hook_state}")
    if worst_rel > 1e-5:
        log(f"  WARNING: rel err vs fp64 reference {worst_rel:.3g} is above 1e-5 (still <= {REL_TOL})")
    res["work"] = work
    return True, res, model


def cross_device_check(model, res, device):
    out = dict(device=device)
    try:
        model = model.to(device)
        worst, same = 0.0, True
        for p in res["prompts"]:
            gen, rows = hf_greedy(model, p["ids"], NEW_TOKENS, device)
            same = same and gen == p["generated"]
            worst = max(worst, max(rel_err(rows[j], p["logits"][j]) for j in range(NEW_TOKENS)))
        out.update(same_greedy_ids=same, max_rel_err=worst)
        flag = "" if (same and worst <= 1e-5) else "   <-- WARNING"
        log(f"  cross-device check on {device}: same greedy ids: {same}; max rel err vs golden "
            f"{worst:.3g}{flag}")
    except Exception as e:
        out.update(error=f"{type(e).__name__}: {e}")
        log(f"  cross-device check on {device} failed to run: {out['error']}")
    return out


def generate(spec, out_dir, hf, args, golden_device, check_device):
    tried = []
    for k in range(args.max_seeds):
        seed = spec.base_seed + k
        ok, res, model = try_seed(spec, seed, out_dir, hf, args, golden_device)
        tried.append({"seed": seed, "accepted": ok,
                      "min_logit_margin": res["min_logit_margin"],
                      "min_router_margin": res["min_router_margin"],
                      **({"rejected": res["rejected"]} if not ok else {})})
        if ok:
            break
    else:
        raise GoldenError(f"{spec.name}: no seed in {spec.base_seed}..{spec.base_seed + args.max_seeds - 1} "
                          f"met the margins")

    final = os.path.join(out_dir, spec.name)
    safe_rmtree(final, out_dir)
    os.replace(res["work"], final)
    files = []
    for p in res["prompts"]:
        i = p["index"]
        arrays = {
            f"prompt_{i}_ids.npy": np.ascontiguousarray(np.asarray(p["ids"], dtype="<i4")),
            f"prompt_{i}_generated.npy": np.ascontiguousarray(np.asarray(p["generated"], dtype="<i4")),
            f"prompt_{i}_logits.npy": np.ascontiguousarray(p["logits"].numpy().astype("<f4")),
        }
        check(arrays[f"prompt_{i}_logits.npy"].shape == (NEW_TOKENS, spec.V), "logits shape")
        for fname, arr in arrays.items():
            np.save(os.path.join(final, fname), arr, allow_pickle=False)
            back = np.load(os.path.join(final, fname), allow_pickle=False)
            check(back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr),
                  f"{fname}: reloaded array differs")
            files.append(fname)

    cross = None
    if check_device is not None:
        cross = cross_device_check(model, res, check_device)

    sizes = {f: os.path.getsize(os.path.join(final, f)) for f in sorted(os.listdir(final))}
    frac = res["bias_changed"] / max(1, res["decisions"])
    if res["bias_changed"] == 0:
        log(f"  WARNING: the routing bias never changed an expert choice in {spec.name}; "
            f"the test cannot tell biased selection from unbiased")
    entry = {
        "dir": spec.name,
        "weights": "FP8 E4M3 128x128 block-scaled projections, BF16 rest, F32 routing bias"
                   if spec.fp8 else "BF16, F32 routing bias",
        "dims": spec.dims(),
        "config": config_json(spec),
        "seed": res["seed"],
        "seeds_tried": tried,
        "prompts": [{"index": p["index"], "length": p["length"], "ids": p["ids"],
                     "generated": p["generated"],
                     "files": [f"prompt_{p['index']}_{s}.npy" for s in ("ids", "generated", "logits")],
                     "min_logit_margin": p["min_logit_margin"],
                     "min_router_margin": p["min_router_margin"],
                     "max_rel_err_vs_fp64": p["max_rel_err_vs_fp64"]} for p in res["prompts"]],
        "new_tokens": NEW_TOKENS,
        "min_logit_margin": res["min_logit_margin"],
        "min_router_margin": res["min_router_margin"],
        "router_bias_changed_choices": f"{res['bias_changed']}/{res['decisions']}",
        "reference": {
            "engine": "transformers MiniMaxM2ForCausalLM",
            "loader": res["loader"]["loader"],
            "expert_layout_in_transformers": res["loader"]["layout"],
            "attn_implementation": res["loader"]["attn"],
            "experts_implementation": res["loader"]["experts"],
            "rope_config": res["cfg_variant"],
            "device": golden_device,
            "dtype": "float32 (TF32 off, matmul precision 'highest')",
            "greedy": "manual argmax loop, full re-run with use_cache=False each step",
            "max_rel_err_vs_independent_fp64": res["max_rel_err_vs_fp64"],
            "greedy_ids_match_independent_fp64": res["ref_ids_match"],
            "router_hook_check": res["router_hook"],
            "cross_device_check": cross,
        },
        "shards": res["shards"],
        "safetensors_writer": res["writers"],
        "files": sizes,
        "total_bytes": sum(sizes.values()),
    }
    log(f"  {spec.name}: seed {res['seed']} accepted; min logit margin {res['min_logit_margin']:.4g}, "
        f"min router margin {res['min_router_margin']:.4g}, bias changed {frac:.0%} of choices, "
        f"{entry['total_bytes']} bytes")
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (e.g. test/data/golden)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="device of the golden reference run (default cpu; the other device, "
                         "when present, is used for a cross-check)")
    ap.add_argument("--max-seeds", type=int, default=20)
    ap.add_argument("--no-cross-check", action="store_true")
    args = ap.parse_args()
    args.cfg_cache = {}
    args.from_pretrained_ok = {}

    out_dir = os.path.abspath(args.out)
    summary = {}
    try:
        with Stage("environment"):
            check(sys.byteorder == "little", "needs a little-endian host")
            check(hasattr(torch, "float8_e4m3fn"), "torch has no float8_e4m3fn")
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.set_float32_matmul_precision("highest")
            try:
                torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
                torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
            except Exception:
                pass
            cuda = torch.cuda.is_available()
            check(args.device == "cpu" or cuda, "--device cuda but CUDA is not available")
            golden_device = args.device
            check_device = None
            if not args.no_cross_check:
                check_device = "cuda" if (golden_device == "cpu" and cuda) else (
                    "cpu" if golden_device == "cuda" else None)
            hf = import_transformers()
            transformers = hf[0]
            try:
                import safetensors
                st_ver = safetensors.__version__
            except Exception:
                st_ver = None
            versions = {"python": platform.python_version(), "torch": torch.__version__,
                        "transformers": transformers.__version__, "numpy": np.__version__,
                        "safetensors": st_ver,
                        "cuda": torch.version.cuda if cuda else None,
                        "gpu": torch.cuda.get_device_name(0) if cuda else None}
            log(f"  versions: {versions}")
            log(f"  golden device: {golden_device}; cross-check device: {check_device}")
            log(f"  TF32 matmul: {torch.backends.cuda.matmul.allow_tf32}, cudnn TF32: "
                f"{torch.backends.cudnn.allow_tf32}, fp32 matmul precision: "
                f"{torch.get_float32_matmul_precision()}")
            os.makedirs(out_dir, exist_ok=True)
            for stale in os.listdir(out_dir):
                if stale.startswith(".work-"):
                    safe_rmtree(os.path.join(out_dir, stale), out_dir)

        entries = {}
        for name in ("bf16", "fp8"):
            spec = Spec(name, SPECS[name])
            with Stage(f"checkpoint {name}"):
                entries[name] = generate(spec, out_dir, hf, args, golden_device, check_device)

        with Stage("manifest"):
            manifest = {
                "generator": "scripts/gpu/make_golden.py",
                "command": "python3 scripts/gpu/make_golden.py --out test/data/golden",
                "argv": sys.argv,
                "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "versions": versions,
                "prompt_lengths": list(PROMPT_LENGTHS),
                "new_tokens": NEW_TOKENS,
                "thresholds": {"min_logit_margin": LOGIT_MARGIN_MIN,
                               "min_router_margin": ROUTER_MARGIN_MIN},
                "init": {"linear": "N(0, 1/fan_in)", "embed": "N(0, 1)",
                         "norms": f"1 + {NORM_STD}*N(0,1)",
                         "router_gate": f"N(0, ({ROUTER_GATE_SCALE})^2/fan_in)",
                         "e_score_correction_bias": f"{BIAS_STD}*N(0,1), F32",
                         "fp8": "per 128x128 block: scale_inv = amax/448 (1 if amax==0), "
                                "fp8 = e4m3fn(clamp(W/scale_inv, -448, 448))"},
                "tolerance": {
                    "logits_rel_err_per_step": REL_TOL,
                    "definition": "per generated step: sqrt(sum_v (logit_m2c[v] - logit_ref[v])^2) / "
                                  "sqrt(sum_v logit_ref[v]^2); greedy ids must be identical",
                },
                "checkpoints": entries,
            }
            with open(os.path.join(out_dir, "manifest.json"), "w") as f:
                json.dump(manifest, f, indent=2)
                f.write("\n")

        with Stage("size check"):
            total = 0
            for root, _dirs, fs in os.walk(out_dir):
                for fn in sorted(fs):
                    pth = os.path.join(root, fn)
                    sz = os.path.getsize(pth)
                    total += sz
                    print(f"    {sz:10d}  {os.path.relpath(pth, out_dir)}")
            log(f"  total size of {out_dir}: {total} bytes ({total / 1e6:.2f} MB)")
            if total > SIZE_WARN_BYTES:
                log(f"  WARNING: above {SIZE_WARN_BYTES / 1e6:.1f} MB")
            summary["total_bytes"] = total

        print()
        print("=" * 78)
        print("SUMMARY")
        for name, e in entries.items():
            ref = e["reference"]
            print(f"  {name}: seed {e['seed']} (tried {len(e['seeds_tried'])}), "
                  f"loader {ref['loader']}, experts layout {ref['expert_layout_in_transformers']}")
            print(f"        min logit margin {e['min_logit_margin']:.4g}, min router margin "
                  f"{e['min_router_margin']:.4g}, bias changed {e['router_bias_changed_choices']} choices")
            print(f"        max rel err vs independent fp64 {ref['max_rel_err_vs_independent_fp64']:.3g}; "
                  f"router hook: {ref['router_hook_check']}")
            if ref["cross_device_check"]:
                print(f"        cross-device: {ref['cross_device_check']}")
            for p in e["prompts"]:
                print(f"        prompt {p['index']} len {p['length']:2d} -> {p['generated']}")
        print(f"  output: {out_dir} ({summary['total_bytes']} bytes), "
              f"elapsed {time.time() - T_START:.1f}s")
        print("OK")
        return 0
    except GoldenError as e:
        print("\n" + "=" * 78, flush=True)
        print(f"FAILED: {e}", flush=True)
        return 1
    except Exception:
        print("\n" + "=" * 78, flush=True)
        traceback.print_exc()
        print("FAILED with an unexpected exception (see traceback above)", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
