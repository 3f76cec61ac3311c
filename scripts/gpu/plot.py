#!/usr/bin/env python3
"""The benchmark figure: bench.png from m2c-bench JSONs (and peers.py's).

Usage: python3 plot.py OUT.png BENCH.json [BENCH.json ...] [--peers PEERS.json]

Left: a bandwidth roofline for decode. Each point is one decode step
(model, batch, context) at its effective bandwidth (bytes it must move /
GPU time); the line is the copy bandwidth measured in the same run, the
ceiling a bandwidth-bound step can reach. Right: per-kernel bars for the
first model at batch 1, each kernel's time as a fraction of its own
roofline (its bytes at the copy bandwidth). Peer decode times, when given,
are drawn as the effective bandwidth they would reach on the same bytes.
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("bench", nargs="+")
    ap.add_argument("--peers")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot: matplotlib is not installed; no PNG written", file=sys.stderr)
        return 2
    runs = [json.load(open(p)) for p in args.bench]

    def mode(run):
        # The comparison runs (kernel by kernel, no PDL) say so in their label.
        parts = ([] if run.get("cuda_graphs", True) else ["no CUDA graphs"]) + \
                ([] if run.get("programmatic_launch", True) else ["no PDL"])
        return f" ({', '.join(parts)})" if parts else ""

    # Full-speed runs first: the kernel panel and the peers use runs[0].
    runs.sort(key=lambda r: (mode(r) != "", os.path.basename(r["artifact"])))
    peers = json.load(open(args.peers)) if args.peers and os.path.exists(args.peers) else None

    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6))
    ceiling = max(r["copy_bandwidth_GBps"] for r in runs)
    left.axhline(ceiling, color="black", linestyle="--",
                 label=f"copy bandwidth {ceiling:.0f} GB/s (ceiling)")
    markers = "osd^v"
    for i, run in enumerate(runs):
        name = os.path.basename(run["artifact"]).replace(".m2a", "") + mode(run)
        for context in sorted({d["context"] for d in run["decode"]}):
            rows = [d for d in run["decode"] if d["context"] == context]
            xs = [d["batch"] for d in rows]
            ys = [d["bytes"] / (d["gpu_us"] * 1e-6) / 1e9 for d in rows]
            left.plot(xs, ys, marker=markers[i % len(markers)],
                      label=f"m2c {name}, context {context}")
        if peers and i == 0:
            for key, label in (("decode", "transformers eager"), ("compiled", "torch.compile")):
                pts = [p for p in peers.get(key, []) if "ms" in p]
                byBatch = {d["batch"]: d["bytes"] for d in run["decode"]
                           if d["context"] == pts[0]["context"]} if pts else {}
                pts = [p for p in pts if p["batch"] in byBatch]
                if pts:
                    left.plot([p["batch"] for p in pts],
                              [byBatch[p["batch"]] / (p["ms"] * 1e-3) / 1e9 for p in pts],
                              marker="x", linestyle=":", label=f"{label}, {name}")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("decode batch (sequences per step)")
    left.set_ylabel("effective bandwidth, GB/s (bytes a step must move / GPU time)")
    left.set_title(f"Decode against the bandwidth roofline ({runs[0]['device']})")
    left.legend(fontsize=7)
    left.grid(True, which="both", alpha=0.3)

    kernels = sorted(runs[0]["kernels_batch1"], key=lambda k: -k["us_each"] * k["count"])
    labels = [k["kernel"].replace("m2c_", "")[:38] for k in kernels]
    fractions = [100 * k["fraction_of_roofline"] for k in kernels]
    right.barh(range(len(kernels)), fractions, color="tab:blue")
    right.axvline(85, color="tab:red", linestyle="--", label="goal: 85% of copy bandwidth")
    right.set_yticks(range(len(kernels)), labels, fontsize=7)
    right.invert_yaxis()
    right.set_xlabel("% of the kernel's own roofline (its bytes at copy bandwidth)")
    right.set_title(os.path.basename(runs[0]["artifact"]).replace(".m2a", "") +
                    ": kernels of a batch-1 decode step, by total time")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"plot: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
