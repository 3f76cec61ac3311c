#!/usr/bin/env python3
"""How far m2c's weight formats move the logits of a tiny MiniMax-M2, random or trained.

    python3 scripts/gpu/quant_study.py --golden test/data/golden/bf16 \
        --train 2000:3e-3:32 --train 4000:1e-3:64 --json OUT/quant-study.json

Issue 4 bounds the relative logits error of quantized plans (int8 <= 1e-2,
FP8 <= 3e-2, int4 g128 <= 6e-2). The golden checkpoints have random weights;
this script asks whether trained weights, or a better quantizer, would meet
the bounds. It emulates in torch exactly what GoldenTest measures:

  * the formats of runtime/weights/Quantize.cpp: int8 per output row
    (amax/127), int4 symmetric per 128 columns (amax/7), FP8 e4m3 per
    128x128 block (amax/448); attention q/k/v/o and experts w1/w2/w3;
  * the metric: ||a - b|| / ||b|| of the logits against the bf16 model,
    teacher-forced on its greedy continuation, 8 steps per prompt.

--golden DIR first runs the golden checkpoint's own prompts, so its figures
can be set beside GoldenTest's (the emulation is checked, not assumed).
Then each --train STEPS:LR:BATCH trains the golden bf16 dims (hidden 128,
2 layers, 8 experts, top-2, sigmoid routing with an aux-loss-free balancing
bias as MiniMax-M2 and DeepSeek-V3 train it) on this machine's Python
sources, tokenized to 512 ids (256 bytes + the 256 most frequent byte
pairs), and measures on 30 held-out prompts (and on the first 3 alone, the
size of the golden set). Besides m2c's formats it reports what other
quantizers would give: MSE-clipped int4 scales, int4 with a zero point,
GPTQ (calibrated on 32 x 256 training tokens), and the errors with expert
choices pinned to the reference's, which separates rounding from router
flips. Runs on the GPU machine (torch, no network) in about 4 minutes.
See docs/quantization.md.
"""
import argparse
import glob
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--golden", help="a golden checkpoint with the bf16 dims (test/data/golden/bf16)")
ap.add_argument("--train", action="append", default=[], metavar="STEPS:LR:BATCH",
                help="train a model and measure it (repeatable)")
ap.add_argument("--json", help="write every figure here")
args = ap.parse_args()

dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.backends.cuda.matmul.allow_tf32 = False
T0 = time.time()


def log(m):
    print(f"[{time.time()-T0:7.1f}s] {m}", flush=True)


V, Hd, H, KV, D, rd, E, K, I, L = 512, 128, 4, 2, 32, 16, 8, 2, 96, 2
eps = 1e-6
theta = 5e6

# ---------------- corpus and a byte-pair vocabulary of 512 ----------------
def corpus():
    files = sorted(glob.glob("/usr/lib/python3*/**/*.py", recursive=True))
    files = [f for f in files if "site-packages" not in f and "dist-packages" not in f]
    data = bytearray()
    for f in files:
        try:
            data += open(f, "rb").read()
        except Exception:
            pass
        if len(data) > 8_000_000:
            break
    return bytes(data)

raw = corpus()
log(f"corpus {len(raw)/1e6:.1f} MB")
t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).to(torch.int64)
pairs = t[:-1] * 256 + t[1:]
counts = torch.bincount(pairs, minlength=65536)
top = torch.topk(counts, 256).indices
pair_id = torch.full((65536,), -1, dtype=torch.int64)
pair_id[top] = torch.arange(256) + 256

def tokenize(b):
    # greedy left to right: a pair in the table becomes one token
    x = list(b)
    out = []
    i = 0
    pid = pair_id.tolist()
    while i < len(x):
        if i + 1 < len(x) and pid[x[i] * 256 + x[i + 1]] >= 0:
            out.append(pid[x[i] * 256 + x[i + 1]]); i += 2
        else:
            out.append(x[i]); i += 1
    return out

log("tokenizing")
# vectorized-ish tokenization in chunks
ids = []
step = 1 << 20
for s in range(0, len(raw), step):
    ids += tokenize(raw[s:s + step])
ids = torch.tensor(ids, dtype=torch.int64)
n_train = int(len(ids) * 0.98)
train_ids, held = ids[:n_train].to(dev), ids[n_train:]
log(f"{len(ids)} tokens ({len(raw)/len(ids):.2f} bytes/token), vocab used {int((torch.bincount(ids, minlength=V)>0).sum())}")

# ---------------- model ----------------
def init(seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)
    P = {"embed": r(V, Hd), "norm": 1 + 0.1 * r(Hd), "lm_head": r(V, Hd) / math.sqrt(Hd)}
    for l in range(L):
        P[f"{l}.in"] = 1 + 0.1 * r(Hd)
        P[f"{l}.q"] = r(H * D, Hd) / math.sqrt(Hd)
        P[f"{l}.k"] = r(KV * D, Hd) / math.sqrt(Hd)
        P[f"{l}.v"] = r(KV * D, Hd) / math.sqrt(Hd)
        P[f"{l}.o"] = r(Hd, H * D) / math.sqrt(H * D)
        P[f"{l}.qn"] = 1 + 0.1 * r(H * D)
        P[f"{l}.kn"] = 1 + 0.1 * r(KV * D)
        P[f"{l}.post"] = 1 + 0.1 * r(Hd)
        P[f"{l}.gate"] = r(E, Hd) * 2 / math.sqrt(Hd)
        P[f"{l}.w1"] = r(E, I, Hd) / math.sqrt(Hd)
        P[f"{l}.w3"] = r(E, I, Hd) / math.sqrt(Hd)
        P[f"{l}.w2"] = r(E, Hd, I) / math.sqrt(I)
    B = {f"{l}.bias": 0.1 * r(E) for l in range(L)}
    return {k: v.to(dev).requires_grad_() for k, v in P.items()}, {k: v.to(dev) for k, v in B.items()}

def rms(z, g):
    return z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + eps) * g

def forward(P, B, x_ids, loads=None, cap=None, pin=None, pinout=None):
    """x_ids [Bt, T] -> logits [Bt, T, V]"""
    Bt, T = x_ids.shape
    half = rd // 2
    pos = torch.arange(T, device=dev, dtype=torch.float32)
    inv = 1.0 / (theta ** (torch.arange(0, rd, 2, device=dev, dtype=torch.float32) / rd))
    ang = pos[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :]
    def rope(t):
        r, rest = t[..., :rd], t[..., rd:]
        rot = torch.cat([-r[..., half:], r[..., :half]], -1)
        return torch.cat([r * cos + rot * sin, rest], -1)
    x = P["embed"][x_ids]
    for l in range(L):
        p = f"{l}."
        h = rms(x, P[p + "in"])
        q = rms(h @ P[p + "q"].T, P[p + "qn"]).view(Bt, T, H, D)
        k = rms(h @ P[p + "k"].T, P[p + "kn"]).view(Bt, T, KV, D)
        v = (h @ P[p + "v"].T).view(Bt, T, KV, D)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(H // KV, 2); v = v.repeat_interleave(H // KV, 2)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        oin = o.transpose(1, 2).reshape(Bt, T, H * D)
        if cap is not None:
            addH(cap, p + "qkv", h); addH(cap, p + "o", oin)
        x = x + oin @ P[p + "o"].T
        h = rms(x, P[p + "post"])
        s = torch.sigmoid(h @ P[p + "gate"].T)                       # [Bt,T,E]
        sel = torch.topk(s.detach() + B[p + "bias"], K, dim=-1).indices
        if pinout is not None: pinout.append(sel)
        if pin is not None: sel = pin[l][:, :T]
        w = s.gather(-1, sel); w = w / w.sum(-1, keepdim=True)
        dense = torch.zeros_like(s).scatter(-1, sel, w)              # [Bt,T,E]
        if loads is not None:
            loads[l] = loads.get(l, 0) + torch.zeros(E, device=dev).scatter_add(0, sel.reshape(-1), torch.ones(sel.numel(), device=dev))
        g1 = torch.einsum("btd,eid->btei", h, P[p + "w1"])
        g3 = torch.einsum("btd,eid->btei", h, P[p + "w3"])
        act = F.silu(g1) * g3
        if cap is not None:
            for e in range(E):
                m = (sel == e).any(-1)
                addH(cap, p + f"e{e}.in", h[m]); addH(cap, p + f"e{e}.act", act[..., e, :][m])
        y = torch.einsum("btei,edi->bted", act, P[p + "w2"])
        x = x + (y * dense[..., None]).sum(2)
    return rms(x, P["norm"]) @ P["lm_head"].T

def addH(cap, key, X):
    X = X.reshape(-1, X.shape[-1]).double()
    cap[key] = cap.get(key, 0) + X.T @ X

def hessian_key(k):
    l, name = k.split(".")[0], k.split(".")[-1]
    if name in ("q", "k", "v"): return [f"{l}.qkv"]
    if name == "o": return [f"{l}.o"]
    if name in ("w1", "w3"): return [f"{l}.e{e}.in" for e in range(E)]
    if name == "w2": return [f"{l}.e{e}.act" for e in range(E)]

def gptq(W, Hm, mode, damp=0.01):
    """W [N,K] fp32; returns dequantized W, GPTQ order 0..K-1, groups of 128."""
    W = W.double().clone(); N, Kk = W.shape
    Hm = Hm.clone()
    dead = torch.diag(Hm) == 0
    Hm[dead, dead] = 1; W[:, dead] = 0
    Hm += damp * torch.diag(Hm).mean() * torch.eye(Kk, device=W.device, dtype=W.dtype)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(Hm)), upper=True)
    Q = torch.zeros_like(W)
    if mode == "int8":
        s = W.abs().amax(1) / 127
    for i in range(Kk):
        if i % 128 == 0:
            g = W[:, i:i + 128]
            if mode == "int4": s = g.abs().amax(1) / 7
            if mode == "fp8":
                s = torch.empty(N, device=W.device, dtype=W.dtype)
                for r in range(0, N, 128): s[r:r+128] = g[r:r+128].abs().max() / 448
        w = W[:, i]
        if mode == "int8": q = (w / s).round().clamp(-127, 127) * s
        elif mode == "int4": q = (w / s).round().clamp(-7, 7) * s
        else: q = (w / s).float().to(torch.float8_e4m3fn).double() * s
        Q[:, i] = q
        err = (w - q) / Hinv[i, i]
        W[:, i + 1:] -= err[:, None] * Hinv[i, i + 1:][None, :]
    return Q.float()

def gptq_all(P, Hs, mode, classes):
    Q = dict(P)
    for k, v in P.items():
        name = k.split(".")[-1]
        if not (("attn" in classes and name in ATTN) or ("experts" in classes and name in EXP)): continue
        keys = hessian_key(k)
        if v.dim() == 2: Q[k] = gptq(v, Hs[keys[0]], mode)
        else: Q[k] = torch.stack([gptq(v[e], Hs[keys[e]], mode) for e in range(E)])
    return Q

# ---------------- quantizers (m2c's formats) ----------------
def q_int8(w):
    s = w.abs().amax(-1, keepdim=True) / 127
    return (w / s).round().clamp(-127, 127) * s
def pad128(w):
    k = w.shape[-1]
    return F.pad(w, (0, (-k) % 128)), k
def q_int4(w, clip=False):
    w, k0 = pad128(w)
    return q_int4_(w, clip)[..., :k0]
def q_int4_(w, clip=False):
    sh = w.shape
    g = w.reshape(*sh[:-1], sh[-1] // 128, 128)
    amax = g.abs().amax(-1, keepdim=True)
    if not clip:
        s = amax / 7
        return ((g / s).round().clamp(-7, 7) * s).reshape(sh)
    best, besterr = None, None
    for a in torch.arange(0.50, 1.001, 0.01):
        s = amax * a / 7
        d = (g / s).round().clamp(-7, 7) * s
        err = (d - g).pow(2).sum(-1, keepdim=True)
        if best is None:
            best, besterr = d, err
        else:
            m = err < besterr
            best = torch.where(m, d, best); besterr = torch.where(m, err, besterr)
    return best.reshape(sh)
def q_int4z(w):
    w, k0 = pad128(w)
    return q_int4z_(w)[..., :k0]
def q_int4z_(w):
    sh = w.shape
    g = w.reshape(*sh[:-1], sh[-1] // 128, 128)
    lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
    s = (hi - lo) / 15; z = (-lo / s).round()
    return (((g / s).round() + z).clamp(0, 15) - z).mul(s).reshape(sh)
def q_fp8(w):
    sh = w.shape
    w2 = w.reshape(-1, sh[-2], sh[-1]) if w.dim() == 3 else w[None]
    out = torch.empty_like(w2)
    for e in range(w2.shape[0]):
        m = w2[e]
        N, Kk = m.shape
        for i in range(0, N, 128):
            for j in range(0, Kk, 128):
                b = m[i:i+128, j:j+128]
                s = b.abs().max() / 448
                out[e, i:i+128, j:j+128] = (b / s).to(torch.float8_e4m3fn).float() * s
    return out.reshape(sh)

ATTN = ["q", "k", "v", "o"]; EXP = ["w1", "w2", "w3"]
def quantized(P, fn, classes):
    Q = {}
    for k, v in P.items():
        name = k.split(".")[-1]
        if ("attn" in classes and name in ATTN) or ("experts" in classes and name in EXP):
            Q[k] = fn(v)
        else:
            Q[k] = v
    return Q

# ---------------- evaluation: the golden test's metric ----------------
@torch.no_grad()
def evaluate(P, B, prompts, label, Hs=None):
    P = {k: v.detach().to(torch.bfloat16).float() for k, v in P.items()}  # bf16 checkpoint
    refs = []
    for pr in prompts:
        seq = list(pr); rows = []
        for _ in range(8):
            lg = forward(P, B, torch.tensor([seq], device=dev))[0, -1]
            rows.append(lg); seq.append(int(lg.argmax()))
        refs.append((pr, seq[len(pr):], rows))
    if golden_generated is not None and len(prompts) == len(golden_generated):
        got = [g for _, g, _ in refs]
        log(f"{label}: greedy ids {'equal' if got == golden_generated else 'DIFFER from'} the golden files'")
    margins = []
    for pr, gen, rows in refs:
        for r in rows:
            t2 = torch.topk(r, 2).values; margins.append(float(t2[0] - t2[1]))
    res = {}
    plans = [("int8", q_int8, ("attn", "experts")), ("fp8", q_fp8, ("attn", "experts")), ("int4", q_int4, ("attn", "experts")),
             ("int4 attn", q_int4, ("attn",)), ("int4 experts", q_int4, ("experts",)), ("fp8 attn", q_fp8, ("attn",)), ("fp8 experts", q_fp8, ("experts",)),
             ("int4clip", lambda w: q_int4(w, True), ("attn", "experts")), ("int4zp", q_int4z, ("attn", "experts"))]
    for name, fn, classes in plans + [("int4 pinned", q_int4, ("attn", "experts")), ("fp8 pinned", q_fp8, ("attn", "experts"))] + ([("gptq " + m, m, ("attn", "experts")) for m in ("int8", "fp8", "int4")] if Hs else []):
            Q = gptq_all(P, Hs, fn, classes) if name.startswith("gptq") else quantized(P, fn, classes)
            errs, flips = [], 0
            for pr, gen, rows in refs:
                for st in range(8):
                    seq = torch.tensor([pr + gen[:st]], device=dev)
                    pin = None
                    if "pinned" in name:
                        pin = []; forward(P, B, seq, pinout=pin)
                    lg = forward(Q, B, seq, pin=pin)[0, -1]
                    errs.append(float((lg - rows[st]).norm() / rows[st].norm()))
                    flips += int(lg.argmax()) != gen[st]
            errs.sort()
            res[name] = (errs[len(errs)//2], errs[int(len(errs)*0.9)], errs[-1], flips, len(errs))
    log(f"{label}: min logit margin {min(margins):.3g}, median {sorted(margins)[len(margins)//2]:.3g}")
    for n, (m, p90, w, f, c) in res.items():
        log(f"   {n:14s} median {m:.3g}  p90 {p90:.3g}  worst {w:.3g}  greedy flips {f}/{c}")
    results[label] = {n: dict(median=m, p90=p90, worst=w, greedy_flips=f, steps=c)
                      for n, (m, p90, w, f, c) in res.items()}
    return res

def held_prompts(n, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    lens = (7, 19, 33)
    for i in range(n):
        ln = lens[i % 3]
        s = int(torch.randint(0, len(held) - ln, (1,), generator=g))
        out.append(held[s:s + ln].tolist())
    return out

def train(seed, steps, lr, bs=32, T=256, balance=1e-3, wd=0.1):
    P, B = init(seed)
    opt = torch.optim.AdamW(P.values(), lr=lr, weight_decay=wd, betas=(0.9, 0.95))
    g = torch.Generator(device=dev).manual_seed(seed)
    for it in range(steps):
        cur = lr * 0.5 * (1 + math.cos(math.pi * it / steps)) if it > 100 else lr * it / 100
        for pg in opt.param_groups: pg["lr"] = cur
        idx = torch.randint(0, len(train_ids) - T - 1, (bs,), device=dev, generator=g)
        x = torch.stack([train_ids[i:i + T + 1] for i in idx.tolist()])
        loads = {}
        lg = forward(P, B, x[:, :-1], loads)
        loss = F.cross_entropy(lg.float().reshape(-1, V), x[:, 1:].reshape(-1))
        opt.zero_grad(); loss.backward()
        torch.nn.utils.clip_grad_norm_(P.values(), 1.0)
        opt.step()
        with torch.no_grad():   # aux-loss-free balancing, as DeepSeek-V3 / MiniMax
            for l, c in loads.items():
                B[f"{l}.bias"] += balance * torch.sign(c.mean() - c)
        if it % 500 == 0 or it == steps - 1:
            log(f"  step {it} loss {loss.item():.3f} ({loss.item()/math.log(2)*len(ids)/len(raw):.2f} bits/byte) load {[int(c.max()/c.mean()*100) for c in loads.values()]}%max/mean")
    return P, B

@torch.no_grad()
def calibrate(P, B, tokens, n=32, T=256, seed=5):
    """GPTQ's Hessians from n windows of `tokens`."""
    P = {k: v.detach().to(torch.bfloat16).float() for k, v in P.items()}
    g = torch.Generator().manual_seed(seed)
    cap = {}
    for i in range(n):
        s0 = int(torch.randint(0, len(tokens) - T, (1,), generator=g))
        forward(P, B, tokens[s0:s0 + T][None], cap=cap)
    return cap

def read_npy_i32(path):
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<H", data[8:10])
    return list(struct.unpack(f"<{(len(data) - 10 - hlen) // 4}i", data[10 + hlen:]))


def load_golden(d):
    """The golden checkpoint under this script's names, and its prompts."""
    from safetensors.torch import load_file
    t = {}
    for f in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
        t.update(load_file(f))
    f32 = lambda n: t[n].float().to(dev)  # noqa: E731
    P = {"embed": f32("model.embed_tokens.weight"), "norm": f32("model.norm.weight"),
         "lm_head": f32("lm_head.weight")}
    B = {}
    for l in range(L):
        p = f"model.layers.{l}."
        for short, name in (("in", "input_layernorm"), ("post", "post_attention_layernorm"),
                            ("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"),
                            ("v", "self_attn.v_proj"), ("o", "self_attn.o_proj"),
                            ("qn", "self_attn.q_norm"), ("kn", "self_attn.k_norm"),
                            ("gate", "block_sparse_moe.gate")):
            P[f"{l}.{short}"] = f32(p + name + ".weight")
        for w in ("w1", "w2", "w3"):
            P[f"{l}.{w}"] = torch.stack([f32(p + f"block_sparse_moe.experts.{e}.{w}.weight")
                                         for e in range(E)])
        B[f"{l}.bias"] = f32(p + "block_sparse_moe.e_score_correction_bias")
    prompts, generated = [], []
    for i in range(3):
        prompts.append(read_npy_i32(os.path.join(d, f"prompt_{i}_ids.npy")))
        generated.append(read_npy_i32(os.path.join(d, f"prompt_{i}_generated.npy")))
    return P, B, prompts, generated


results = {}
golden_generated = None
if args.golden:
    P0, B0, golden_prompts, golden_generated = load_golden(args.golden)
    # Its prompts are uniform random ids, and so is its calibration.
    random_ids = torch.randint(0, V, (1 << 16,), generator=torch.Generator().manual_seed(3)).to(dev)
    evaluate(P0, B0, golden_prompts, f"golden checkpoint {args.golden}",
             calibrate(P0, B0, random_ids))
    golden_generated = None
prompts = held_prompts(30, 7)
P0, B0 = init(1000)
evaluate(P0, B0, prompts, "random weights, 30 text prompts")
for steps, lr, bs in [(int(a), float(b), int(c)) for a, b, c in (s.split(":") for s in args.train)]:
    log(f"training {steps} steps lr {lr} batch {bs}")
    P, B = train(1000, steps, lr, bs=bs)
    Hs = calibrate(P, B, train_ids)
    evaluate(P, B, prompts, f"trained {steps} steps lr {lr} batch {bs}", Hs)
    evaluate(P, B, prompts[:3], f"trained {steps} steps lr {lr} batch {bs}, first 3 prompts", Hs)
if args.json:
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {args.json}")
