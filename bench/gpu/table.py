"""The short table bench/gpu/run.sh prints last, from the JSON files its steps wrote into OUT.

Usage: python3 bench/gpu/table.py OUT
MFU = (6N + 6·L·d·T)·tokens/s ÷ peak dense bf16 of the card (H100/H200 SXM 989, H100 PCIe 756, A100 312 TFLOP/s),
and ÷ the bf16 GEMM rate measured in the same run.
"""
import json
import os
import sys

PEAKS = [("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12)]


def load(out, name):
    try:
        return json.load(open(os.path.join(out, name)))
    except (OSError, ValueError):
        return None


def main():
    out = sys.argv[1]
    rows = []
    check, hf = load(out, "check.json"), load(out, "hf.json")
    gemm = load(out, "gemm.json")
    ours, peer = load(out, "train.json"), load(out, "torch_train.json")
    dec, peer_dec = load(out, "decode.json"), load(out, "torch_decode.json")
    if check:
        bad = [c["name"] for c in check["checks"] if not c["ok"]]
        rows.append(("correctness vs CPU backend", f"{len(check['checks']) - len(bad)}/{len(check['checks'])} pass"
                     + (f" (FAIL: {'; '.join(bad)})" if bad else "")))
    else:
        rows.append(("correctness vs CPU backend", "not run / crashed (see run.log)"))
    if hf:
        rows.append(("vs transformers LlamaForCausalLM", hf.get("skipped") or
                     f"{'pass' if hf['ok'] else 'FAIL'}: logits rel L2 {hf['logits_rel_l2']:.2e}, "
                     f"loss {hf['loss_cuda']:.4f} vs {hf['loss_hf']:.4f}"))
    for file, label in (("layouts.json", "one GPU"), ("layouts_nccl.json", "a GPU per rank")):
        layouts = load(out, file)
        if layouts:
            bad = [r["layout"] for r in layouts["rows"] if not r["pass"]]
            worst = max((r.get("params", 0) for r in layouts["rows"]), default=0)
            comms = "/".join(sorted({r.get("comm", "?") for r in layouts["rows"]}))
            rows.append((f"parallel layouts vs 1 rank ({label}, {comms})",
                         f"{len(layouts['rows']) - len(bad)}/{len(layouts['rows'])} pass, worst params rel L2 "
                         f"{worst:.1e}" + (f" (FAIL: {'; '.join(bad)})" if bad else "")))
        elif file == "layouts.json":
            rows.append((f"parallel layouts vs 1 rank ({label})", "not run / crashed (see run.log)"))
    name = (gemm or {}).get("device", "?")
    peak = next((p for k, p in PEAKS if k in name), None)
    gemm_rate = gemm["gemm_tflops"] * 1e12 if gemm else None
    if gemm:
        rows.append((f"bf16 GEMM 8192^3 ({name})", f"{gemm['gemm_tflops']:.0f} TFLOP/s"
                     + (f" = {gemm_rate / peak:.0%} of peak {peak / 1e12:.0f}" if peak else "")))

    def mfu(r):
        f = r["model_tflops"] * 1e12
        a = f"{f / peak:.1%} MFU" if peak else "MFU: unknown peak"
        b = f", {f / gemm_rate:.1%} of measured GEMM" if gemm_rate else ""
        rc = " recompute" if r.get("recompute") else ""
        k = r.get("micro_batches", 1)
        acc = f" x {k} micro-batches" if k > 1 else ""
        return (f"{r['tokens_per_s']:.0f} tok/s, L {r['layers']} B {r['micro_batch']} T {r['seq']}{acc}{rc}: "
                f"{r['model_tflops']:.0f} TFLOP/s, {a}{b}")

    # One micro-batch per step, then (when measured) steps of several with gradient accumulation.
    steps = [("", ours, peer), (" accumulated", (ours or {}).get("accumulated"), (peer or {}).get("accumulated"))]
    for kind, o, p in steps:
        if o:
            rows.append((f"train step{kind}, meditron CUDA", mfu(o)))
        if p:
            rows.append((f"train step{kind}, PyTorch eager+SDPA", mfu(p)))
        if o and p:
            ratio = o["model_tflops"] / p["model_tflops"]
            rows.append((f"ratio{kind} meditron / PyTorch (model TFLOP/s)", f"{ratio:.2f}x"))
    for b in (1, 64):
        k = f"batch{b}_tokens_per_s"
        if dec and k in dec:
            v = f"{dec[k]:.0f} tok/s (L {dec['layers']})"
            if peer_dec and k in peer_dec:
                v += f" vs PyTorch {peer_dec[k]:.0f} = {dec[k] / peer_dec[k]:.2f}x"
            rows.append((f"decode batch {b}", v))
    w = max(len(r[0]) for r in rows)
    print("\n== meditron CUDA: summary ==")
    for k, v in rows:
        print(f"{k.ljust(w)}  {v}")


if __name__ == "__main__":
    main()
