#!/usr/bin/env python3
"""Runs the PTX kernels m2c-ptx emitted on a GPU and checks them against PyTorch.

For the GPU machine (CUDA driver + PyTorch, no MLIR). Usage:
  m2c-ptx PLAN.json --target sm_90 --output-dir DIR      (on the build machine)
  python3 gpu_check.py PLAN.json DIR [--bench] [--only SUBSTR]

Each unique kernel of DIR/manifest.json is launched through the CUDA driver
API (ctypes) with random inputs shaped as its first plan use says, following
the launch ABI of the manifest (grid/block per token count, parameter order),
and its outputs are compared with a float64 PyTorch reference of the CPU
backend's semantics. --bench also times the bandwidth-bound decode kernels
against the copy ceiling and cuBLAS measured in the same run.
"""
import argparse
import ctypes
import json
import math
import os
import sys

import torch

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16, "i32": torch.int32}

# ----------------------------------------------------------------------------
# CUDA driver
# ----------------------------------------------------------------------------
_cuda = ctypes.CDLL("libcuda.so.1")


def _check(result, what):
    if result != 0:
        name = ctypes.c_char_p()
        _cuda.cuGetErrorName(result, ctypes.byref(name))
        raise RuntimeError(f"{what} failed: {name.value.decode() if name.value else result}")


class Module:
    def __init__(self, ptx_path):
        torch.cuda.init()
        torch.zeros(1, device="cuda")  # makes the primary context current
        with open(ptx_path, "rb") as f:
            image = f.read() + b"\0"
        self.handle = ctypes.c_void_p()
        log = ctypes.create_string_buffer(8192)
        # CU_JIT_ERROR_LOG_BUFFER = 5, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6
        opts = (ctypes.c_int * 2)(5, 6)
        vals = (ctypes.c_void_p * 2)(ctypes.cast(log, ctypes.c_void_p), ctypes.c_void_p(8192))
        r = _cuda.cuModuleLoadDataEx(ctypes.byref(self.handle), image, 2, opts, vals)
        if r != 0:
            raise RuntimeError(f"cuModuleLoadDataEx({ptx_path}) failed ({r}): {log.value.decode()}")
        self.functions = {}

    def function(self, name):
        if name not in self.functions:
            f = ctypes.c_void_p()
            _check(_cuda.cuModuleGetFunction(ctypes.byref(f), self.handle, name.encode()),
                   f"cuModuleGetFunction({name})")
            self.functions[name] = f
        return self.functions[name]


class Pointer(int):
    """A raw device address argument (a plain int is an i32 scalar)."""


def launch(function, grid, block, args, shared_bytes=0):
    holders = []
    for a in args:
        if isinstance(a, torch.Tensor):
            holders.append(ctypes.c_void_p(a.data_ptr()))
        elif isinstance(a, Pointer):
            holders.append(ctypes.c_void_p(int(a)))
        elif isinstance(a, int):
            holders.append(ctypes.c_int32(a))
        else:
            raise TypeError(f"bad kernel argument {a!r}")
    params = (ctypes.c_void_p * len(holders))(*[ctypes.addressof(h) for h in holders])
    stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    if shared_bytes > 48 * 1024:
        # CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8
        _check(_cuda.cuFuncSetAttribute(function, 8, shared_bytes), "cuFuncSetAttribute")
    _check(_cuda.cuLaunchKernel(function, *grid, *block, shared_bytes, stream, params, None),
           "cuLaunchKernel")


def tensor_map(matrix, box):
    """A CUtensorMap over a bf16/f16/f32 weight in device memory, as the
    runtime encodes it (tensor_map parameters): boxes of box = [rows, cols],
    128-byte swizzle, zero fill. Returns the device tensor holding it."""
    data_type = {torch.bfloat16: 9, torch.float16: 6, torch.float32: 7}[matrix.dtype]
    matrix = matrix.reshape(-1, matrix.shape[-1])  # stacked experts: one tall matrix
    rows, cols = matrix.shape
    # CUtensorMap is 128 bytes, 64-byte aligned.
    storage = ctypes.create_string_buffer(128 + 64)
    raw = ctypes.c_void_p((ctypes.addressof(storage) + 63) // 64 * 64)
    dims = (ctypes.c_uint64 * 2)(cols, rows)
    strides = (ctypes.c_uint64 * 1)(cols * matrix.element_size())
    box_dims = (ctypes.c_uint32 * 2)(box[1], box[0])
    element_strides = (ctypes.c_uint32 * 2)(1, 1)
    # interleave none, swizzle 128B (3), L2 promotion 256B (3), zero fill (0)
    _check(_cuda.cuTensorMapEncodeTiled(raw, data_type, 2, ctypes.c_void_p(matrix.data_ptr()),
                                        dims, strides, box_dims, element_strides, 0, 3, 3, 0),
           "cuTensorMapEncodeTiled")
    return torch.frombuffer(bytearray(ctypes.string_at(raw, 128)), dtype=torch.uint8).to("cuda")


def extent(e, tokens):
    if e["token_scale"] == 0:
        return e["constant"]
    return (e["constant"] * ((tokens * e["token_scale"] + e["token_divisor"] - 1) // e["token_divisor"])
            + e.get("offset", 0))


# ----------------------------------------------------------------------------
# Operands
# ----------------------------------------------------------------------------
class Step:
    """Entry inputs and the KV cache of one step."""

    def __init__(self, plan, tokens, decode, seed):
        g = torch.Generator().manual_seed(seed)
        kv = plan["kv_cache"]
        self.bs = kv["block_size"]
        self.tokens = tokens
        if decode:
            # One token per sequence, contexts of different lengths.
            self.num_seqs = tokens
            ctx = [int(x) for x in torch.randint(1, 300, (tokens,), generator=g)]
            positions = [c - 1 for c in ctx]
            seqs = list(range(tokens))
        else:
            # Two sequences: a continued one (cached prefix) and a fresh one.
            self.num_seqs = 2
            first = tokens // 2
            start = 37
            positions = [start + i for i in range(first)] + list(range(tokens - first))
            seqs = [0] * first + [1] * (tokens - first)
        self.max_blocks = max(positions) // self.bs + 2
        blocks = torch.randperm(self.num_seqs * self.max_blocks, generator=g) + 1  # 0 is null
        self.num_blocks = self.num_seqs * self.max_blocks + 1
        self.positions = torch.tensor(positions, dtype=torch.int32, device="cuda")
        self.seqs = torch.tensor(seqs, dtype=torch.int32, device="cuda")
        self.block_tables = blocks.view(self.num_seqs, self.max_blocks).to(torch.int32).cuda()
        self.kv_heads, self.head_dim = kv["kv_heads"], kv["head_dim"]
        self.kv_type = DTYPES[kv["type"]]
        # One layer of [blocks][block_size][2][kv_heads][head_dim], random so
        # that cached prefixes have content.
        self.cache = (torch.randn(self.num_blocks, self.bs, 2, self.kv_heads, self.head_dim,
                                  generator=g) * 0.5).to(self.kv_type).cuda()
        self.token_ids = None

    def input(self, name, vocab=None):
        if name == "token_ids":
            return self.token_ids
        return {"positions": self.positions, "token_seqs": self.seqs,
                "block_tables": self.block_tables}[name]


def make_tensor(shape, dtype, g, scale=1.0):
    t = torch.empty(*shape, dtype=dtype, device="cuda")
    # Chunked so that multi-GB f32 weights need no f32 temporary of their size.
    flat = t.view(-1)
    for i in range(0, flat.numel(), 1 << 28):
        part = flat[i:i + (1 << 28)]
        part.copy_(torch.randn(part.numel(), generator=g, device="cuda") * scale)
    return t


# ----------------------------------------------------------------------------
# References (float64, the CPU backend's semantics)
# ----------------------------------------------------------------------------
def rms_ref(x, w, eps):
    x = x.double()
    s = (1.0 / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)).float().double()
    return x * s * w.double()


def rope_ref(x, positions, heads, d, rd, theta):
    x = x.double().view(x.shape[0], heads, d).clone()
    half = rd // 2
    if half == 0:
        return x.view(x.shape[0], -1)
    inv = torch.tensor([1.0 / theta ** (2 * i / rd) for i in range(half)], dtype=torch.float32,
                       device=x.device)
    ang = positions.float()[:, None] * inv[None, :]
    c, s = torch.cos(ang).double()[:, None, :], torch.sin(ang).double()[:, None, :]
    x1, x2 = x[..., :half].clone(), x[..., half:rd].clone()
    x[..., :half] = x1 * c - x2 * s
    x[..., half:rd] = x2 * c + x1 * s
    return x.view(x.shape[0], -1)


def attention_ref(step, q, k, v, attrs, cache_before):
    H, KV, D = int(attrs["num_heads"]), int(attrs["num_kv_heads"]), int(attrs["head_dim"])
    rd, theta = int(attrs["rotary_dim"]), attrs["rope_theta"]
    T = q.shape[0]
    pos = step.positions.long()
    qr = rope_ref(q, step.positions, H, D, rd, theta).view(T, H, D)
    kr = rope_ref(k, step.positions, KV, D, rd, theta).view(T, KV, D)
    cache = cache_before.clone().double()
    bt = step.block_tables.long()
    for t in range(T):
        b = bt[step.seqs[t].long(), pos[t] // step.bs]
        cache[b, pos[t] % step.bs, 0] = kr[t].to(step.kv_type).double()
        cache[b, pos[t] % step.bs, 1] = v.view(T, KV, D)[t].to(step.kv_type).double()
    out = torch.zeros(T, H, D, dtype=torch.float64, device=q.device)
    scale = float(D ** -0.5)
    for t in range(T):
        ctx = int(pos[t]) + 1
        idx = torch.arange(ctx, device=q.device)
        blocks = bt[step.seqs[t].long(), idx // step.bs]
        keys = cache[blocks, idx % step.bs, 0]  # [ctx, KV, D]
        vals = cache[blocks, idx % step.bs, 1]
        for h in range(H):
            kh = h // (H // KV)
            sc = (keys[:, kh, :] @ qr[t, h]) * scale
            p = torch.softmax(sc, 0)
            out[t, h] = p @ vals[:, kh, :]
    return out.view(T, H * D), cache


# ----------------------------------------------------------------------------
# Checking one kernel
# ----------------------------------------------------------------------------
def candidates_ok(logits, ids, values):
    """The K best of each row of the kernel's own logits, best first: larger
    value, then the lower index (a stable sort; -0 equals +0)."""
    k = ids.shape[1]
    order = torch.sort(logits.float(), dim=-1, descending=True, stable=True).indices[:, :k]
    return (torch.equal(ids.long(), order)
            and torch.equal(values, torch.gather(logits.float(), 1, order)))


def rel_err(out, ref):
    out, ref = out.double(), ref.double()
    denom = ref.abs().max().item() or 1.0
    return (out - ref).abs().max().item() / denom


class Checker:
    def __init__(self, plan, manifest, ptx_dir, args):
        self.plan, self.manifest, self.dir, self.args = plan, manifest, ptx_dir, args
        self.results = []

    def first_use(self, kernel_id):
        for e, entry in enumerate(self.manifest["entries"]):
            for k, kid in enumerate(entry["kernels"]):
                if kid == kernel_id:
                    return self.plan["entries"][e], self.plan["entries"][e]["kernels"][k]
        return None, None

    def operand(self, entry, op, tokens, g, vocab):
        if "buffer" in op:
            b = entry["buffers"][op["buffer"]]
            rows = b["static_rows"] or tokens
            return make_tensor((rows, b["cols"]), DTYPES[b["type"]], g), "buffer"
        if "weight" in op:
            w = self.plan["weights"][op["weight"]]
            stype = DTYPES[w["storage"]["type"]]
            fan_in = w["shape"][-1]
            return make_tensor(w["shape"], stype, g, 1.0 / math.sqrt(fan_in)), "weight"
        return None, op["input"]

    def run(self, kernel_id):
        binary = self.manifest["kernels"][kernel_id]
        entry, pk = self.first_use(kernel_id)
        kind = pk["kind"]
        decode = entry["name"] == "decode"
        static_rows = [entry["buffers"][o["buffer"]]["static_rows"] for o in pk["inputs"] if "buffer" in o]
        tokens = self.args.decode_tokens if decode else self.args.prefill_tokens
        if static_rows and static_rows[0]:
            tokens = max(tokens, static_rows[0])  # take_last_row reads T rows
        tokens = min(tokens, self.plan["max_tokens"])  # a step never holds more
        g = torch.Generator(device="cuda").manual_seed(1234 + kernel_id)
        step = Step(self.plan, tokens, decode, 99 + kernel_id)
        ins = []
        for op in pk["inputs"]:
            t, what = self.operand(entry, op, tokens, g, None)
            if what in ("token_ids", "positions", "token_seqs", "block_tables"):
                if what == "token_ids":
                    vocab = self.plan["weights"][pk["inputs"][1]["weight"]]["shape"][0]
                    step.token_ids = torch.randint(0, vocab, (tokens,), generator=g,
                                                   dtype=torch.int32, device="cuda")
                t = step.input(what)
            ins.append(t)
        # Router outputs feed the experts: make ids valid and weights sane.
        if kind == "moe_experts":
            E = ins[3].shape[0]
            k = ins[1].shape[1]
            ids = torch.stack([torch.randperm(E, generator=g, device="cuda")[:k]
                               for _ in range(ins[1].shape[0])])
            ins[1] = ids.to(torch.int32)
            ins[2] = torch.rand(ins[2].shape, generator=g, device="cuda")
        outs = []
        for o in pk["outputs"]:
            b = entry["buffers"][o]
            rows = b["static_rows"] or tokens
            outs.append(torch.full((rows, b["cols"]), float("nan"), dtype=DTYPES[b["type"]], device="cuda")
                        if b["type"] != "i32" else torch.full((rows, b["cols"]), -1, dtype=torch.int32, device="cuda"))
        workspace = torch.empty(max(binary["workspace_bytes"], 16), dtype=torch.uint8, device="cuda")
        # A kernel's state starts zeroed (as the runtime allocates it) and
        # must be zeroed again after every launch set.
        state = torch.zeros(max(binary.get("state_bytes", 0), 16), dtype=torch.uint8, device="cuda")
        module = Module(os.path.join(self.dir, binary["ptx_file"]))
        cache_before = step.cache.clone()

        def args_for(launch_desc):
            args = []
            for p in launch_desc["params"]:
                kindp, idx = p["kind"], p["index"]
                if kindp == "input":
                    args.append(ins[idx])
                elif kindp == "output":
                    args.append(outs[idx])
                elif kindp == "kv_cache_layer":
                    args.append(step.cache)
                elif kindp == "workspace":
                    args.append(Pointer(workspace.data_ptr() + idx))
                elif kindp == "state":
                    args.append(Pointer(state.data_ptr() + idx))
                elif kindp == "num_tokens":
                    args.append(launch_tokens[0])
                elif kindp == "max_blocks":
                    args.append(step.max_blocks)
                elif kindp == "tensor_map":
                    # Encoded once, before any graph capture replays it.
                    key = (idx, tuple(p["box"]))
                    if key not in maps:
                        maps[key] = tensor_map(ins[idx], p["box"])
                    args.append(maps[key])
                else:
                    raise RuntimeError(f"unknown param kind {kindp}")
            return args

        launch_tokens = [tokens]
        maps = {}  # tensor maps by (input, box), alive while launches may run

        def run_all():
            for l in binary["launches"]:
                grid = [extent(e, launch_tokens[0]) for e in l["grid"]]
                launch(module.function(l["entry"]), grid, l["block"], args_for(l),
                       l.get("shared_bytes", 0))

        run_all()
        torch.cuda.synchronize()
        err, note = self.compare(kind, pk, ins, outs, step, cache_before, binary)
        # Tensor-core kernels round their operands (x, W; attention's q and P)
        # to bf16.
        tensor_cores = ("mma" in binary["signature"] or "grouped" in binary["signature"]
                        or any("_mma" in l["entry"] for l in binary["launches"]))
        tol = 2e-2 if tensor_cores else 2e-3
        ok = err is not None and err <= tol and all(not torch.isnan(o.float()).any() for o in outs)
        if state.any():
            ok, note = False, note + " (state not zeroed)"
        if kind == "lm_head" and len(outs) == 4 and ok:
            # Ties: logits drawn from 7 values (+-0 among them) make the
            # threshold value shared, so the index passes pick the lowest ids.
            levels = torch.tensor([-2.0, -0.0, 0.0, 0.5, 1.0, 1.5, 3.0], device="cuda")
            pick = torch.randint(0, 7, outs[0].shape, generator=g, device="cuda")
            outs[0].copy_(levels[pick])
            outs[2].fill_(-1)
            outs[3].fill_(float("nan"))
            for l in binary["launches"][-2:]:  # the candidates' two launches
                grid = [extent(e, launch_tokens[0]) for e in l["grid"]]
                launch(module.function(l["entry"]), grid, l["block"], args_for(l),
                       l.get("shared_bytes", 0))
            torch.cuda.synchronize()
            if not candidates_ok(outs[0], outs[2], outs[3]):
                ok, note = False, note + " (candidates differ on tied logits)"
            else:
                note += " (and on tied logits)"
        line = f"{'OK  ' if ok else 'FAIL'} {binary['name']:<60} T={tokens:<4} rel_err={err:.2e} {note}"
        print(line, flush=True)
        self.results.append(ok)
        if self.args.bench:
            # Decode kernels at batch 1 (the bandwidth-bound case), the rest
            # at the tokens they were checked with.
            if decode and not (static_rows and static_rows[0]):
                launch_tokens[0] = 1
            self.bench(binary, kind, ins, outs, launch_tokens[0], run_all)
            if state.any():
                print(f"FAIL {binary['name']}: state not zeroed after the bench's launches", flush=True)
                self.results.append(False)

    def compare(self, kind, pk, ins, outs, step, cache_before, binary):
        attrs = pk.get("attrs", {})
        if kind == "embedding":
            ref = ins[1].double()[step.token_ids.long()]
            return rel_err(outs[0], ref), ""
        if kind == "rms_norm":
            return rel_err(outs[0], rms_ref(ins[0], ins[1], attrs["eps"])), ""
        if kind == "add_rms_norm":
            s = ins[0].double() + ins[1].double()
            e1 = rel_err(outs[0], s)
            e2 = rel_err(outs[1], rms_ref(s.float(), ins[2], attrs["eps"]))
            return max(e1, e2), ""
        if kind == "add":
            return rel_err(outs[0], ins[0].double() + ins[1].double()), ""
        if kind == "take_last_row":
            return rel_err(outs[0], ins[0][-1:].double()), ""
        if kind == "linear":
            x, w = ins[0], ins[1]
            # A fused projection's outputs are consecutive column ranges.
            y = torch.cat(outs, dim=1)
            ref = x.double() @ w.double().t()
            if "mma" in binary["signature"]:
                # The tensor-core path rounds x and W to bf16; check it against
                # that exactly-rounded product and report the fp32 gap.
                ref16 = x.to(torch.bfloat16).double() @ w.to(torch.bfloat16).double().t()
                return rel_err(y, ref16), f"(vs fp32 ref {rel_err(y, ref):.1e})"
            return rel_err(y, ref), ""
        if kind == "lm_head":
            # (x, norm weight, lm_head [, residual]) -> (logits, greedy ids).
            x = ins[0].double() + (ins[3].double() if len(ins) == 4 else 0)
            h = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + attrs["eps"])) * ins[1].double()
            ref = h @ ins[2].double().t()
            # The ids must be the first maximum of the kernel's own logits:
            # exact, whatever rounding did to near-ties.
            logits = outs[0].double()
            best = logits.max(-1, keepdim=True).values
            first = (logits == best).double().argmax(-1)
            ids_ok = torch.equal(outs[1][:, 0].long(), first.long())
            if not ids_ok:
                return 1.0, "(ids differ)"
            if len(outs) == 4 and not candidates_ok(outs[0], outs[2], outs[3]):
                return 1.0, "(candidates differ)"
            return rel_err(outs[0], ref), "(ids, candidates exact)" if len(outs) == 4 else ""
        if kind == "attention":
            q, k = ins[0], ins[1]
            if len(ins) == 8:  # the fused QK-norm: RMSNorm of whole rows, before RoPE
                eps = attrs["qk_norm_eps"]
                norm = lambda x, w: (x.double() * torch.rsqrt(x.double().pow(2).mean(-1, keepdim=True)
                                                              + eps)) * w.double()
                q, k = norm(q, ins[6]), norm(k, ins[7])
            ref, cache = attention_ref(step, q, k, ins[2], attrs, cache_before)
            e_out = rel_err(outs[0], ref)
            e_cache = rel_err(step.cache, cache)
            return max(e_out, e_cache), f"(cache {e_cache:.1e})"
        if kind == "moe_route":
            # The fused norm prologue: (a, b, w, gate [, bias]) -> (sum, normed, ids, weights).
            # Routing is checked on the kernel's own normed rows, so a rounding
            # difference cannot flip a near-tie.
            first, e_norm = 0, 0.0
            if attrs.get("add_rms_norm", 0):
                first = 2
                s = ins[0].double() + ins[1].double()
                e_norm = max(rel_err(outs[0], s),
                             rel_err(outs[1], rms_ref(s.float(), ins[2], attrs["eps"])))
                x = outs[1].double()
            else:
                x = ins[0].double()
            gate = ins[first + 1].double()
            logits = x @ gate.t()
            if attrs.get("softmax", 0):
                scores = torch.softmax(logits, -1)
            else:
                scores = torch.sigmoid(logits)
            choice = scores + (ins[first + 2].double() if len(ins) == first + 3 else 0)
            k = int(attrs["top_k"])
            top = torch.topk(choice, k, dim=-1).indices
            w = torch.gather(scores, 1, top)
            if attrs.get("renormalize", 0):
                w = w / w.sum(-1, keepdim=True)
            ids_ok = torch.equal(outs[first].long(), top)
            note = "" if ids_ok else "(ids differ)"
            if first:
                note += f" (norm {e_norm:.1e})"
            return max(rel_err(outs[first + 1], w), e_norm) if ids_ok else 1.0, note
        if kind == "moe_experts":
            x, ids, wts = ins[0].double(), ins[1].long(), ins[2].double()
            w1, w3, w2 = ins[3], ins[4], ins[5]
            ref = torch.zeros_like(x)
            for e in ids.unique().tolist():
                t_idx, j_idx = (ids == e).nonzero(as_tuple=True)
                xe = x[t_idx]
                gt = xe @ w1[e].double().t()
                up = xe @ w3[e].double().t()
                act = gt / (1 + torch.exp(-gt)) * up
                ye = act @ w2[e].double().t()
                ref.index_add_(0, t_idx, ye * wts[t_idx, j_idx][:, None])
            if len(ins) == 7:
                ref = ref + ins[6].double()
            return rel_err(outs[0], ref), ""
        return None, f"no reference for {kind}"

    def bench(self, binary, kind, ins, outs, tokens, run_all):
        def rows(t):
            return t[:tokens] if t.dim() == 2 and t.shape[0] >= tokens and t.shape[0] == ins[0].shape[0] else t
        moved = 0
        if kind == "embedding":
            moved = tokens * ins[1].shape[1] * (ins[1].element_size() + 4)
        elif kind == "moe_experts":
            moved = sum(rows(t).numel() * t.element_size() for t in ins[:3])
            distinct = ins[1][:tokens].unique().numel()
            moved += distinct * sum(t[0].numel() * t.element_size() for t in ins[3:6])
        elif kind == "attention":
            moved = 0  # reported as time only
        else:
            moved = sum(rows(t).numel() * t.element_size() for t in ins if isinstance(t, torch.Tensor))
            moved += sum(rows(t).numel() * t.element_size() for t in outs)
        reps = 20
        for _ in range(2):
            run_all()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(reps):
                run_all()
        graph.replay()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for _ in range(5):
            start.record()
            graph.replay()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) * 1e3 / reps)
        times.sort()
        us = times[len(times) // 2]
        line = f"     bench T={tokens}: {us:8.2f} us/launch-set (CUDA graph)"
        if moved:
            line += f"  {moved / us / 1e3:7.0f} GB/s"
        if kind == "linear" and "mma" in binary["signature"]:
            n, kdim = ins[1].shape
            line += f"  {2 * tokens * n * kdim / us / 1e6:7.1f} TFLOP/s"
            # cuBLAS on the same shape in the same run: bf16 x (the kernel
            # rounds x to bf16 too) times the same weight, f32 out.
            xb = ins[0][:tokens].to(torch.bfloat16)
            wt = ins[1].t()
            try:
                torch.matmul(xb, wt, out_dtype=torch.float32)
                mm = lambda: torch.matmul(xb, wt, out_dtype=torch.float32)
            except TypeError:  # older torch: bf16 out
                mm = lambda: torch.matmul(xb, wt)
            for _ in range(3):
                mm()
            torch.cuda.synchronize()
            cublas_times = []
            for _ in range(5):
                start.record()
                for _ in range(reps):
                    mm()
                end.record()
                torch.cuda.synchronize()
                cublas_times.append(start.elapsed_time(end) * 1e3 / reps)
            cublas_us = sorted(cublas_times)[2]
            line += (f"  cuBLAS {cublas_us:.2f} us ({2 * tokens * n * kdim / cublas_us / 1e6:.1f} "
                     f"TFLOP/s): {cublas_us / us * 100:.0f}% of cuBLAS")
        print(line, flush=True)


def ceilings():
    x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(10):
        y.copy_(x)
    e.record()
    torch.cuda.synchronize()
    copy = 2 * x.numel() * 10 / (s.elapsed_time(e) * 1e-3) / 1e9
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    s.record()
    for _ in range(10):
        a @ a
    e.record()
    torch.cuda.synchronize()
    tflops = 2 * 8192 ** 3 * 10 / (s.elapsed_time(e) * 1e-3) / 1e12
    w = torch.randn(200064, 4096, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(4096, 1, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        w @ v
    torch.cuda.synchronize()
    s.record()
    for _ in range(10):
        w @ v
    e.record()
    torch.cuda.synchronize()
    gemv = w.numel() * 2 * 10 / (s.elapsed_time(e) * 1e-3) / 1e9
    print(f"ceilings: copy {copy:.0f} GB/s, cuBLAS bf16 8192^3 {tflops:.0f} TFLOP/s, "
          f"cuBLAS GEMV 200064x4096 bf16 {gemv:.0f} GB/s ({torch.cuda.get_device_name()})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("dir")
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--decode-tokens", type=int, default=7)
    # 200: prefill attention sees a 64-token tile with a cached prefix, one
    # that mixes two sequences, a fresh one and a partial one.
    ap.add_argument("--prefill-tokens", type=int, default=200)
    args = ap.parse_args()
    plan = json.load(open(args.plan))
    manifest = json.load(open(os.path.join(args.dir, "manifest.json")))
    if args.bench:
        ceilings()
    checker = Checker(plan, manifest, args.dir, args)
    for i, k in enumerate(manifest["kernels"]):
        if args.only and args.only not in k["name"]:
            continue
        if args.skip and any(s and s in k["name"] for s in args.skip.split(",")):
            continue
        try:
            checker.run(i)
        except Exception as ex:  # keep going: report every kernel
            print(f"FAIL {k['name']}: {ex}", flush=True)
            checker.results.append(False)
        torch.cuda.empty_cache()
    failed = checker.results.count(False)
    print(f"{len(checker.results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
