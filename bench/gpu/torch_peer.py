"""The PyTorch peer of `bench/gpu/gpu.ts train|decode`, measured in the same run on the same GPU.

Usage: python3 bench/gpu/torch_peer.py gemm|train|decode --out OUT.json [--layers L] [--micro B] [--steps S]
       [--accum K]
- gemm: the card's dense bf16 GEMM rate (torch.matmul 8192³, fp32 accumulation), TFLOP/s.
- train: transformers' LlamaForCausalLM with Llama-2-7B layer shapes (d 4096, 32 heads, ffn 11008, vocab 32000,
  seq 2048): fp32 weights, bf16 autocast, SDPA (flash) attention, fused AdamW, clip 1.0; eager mode. The
  micro-batch and then the layer count halve until a step fits. MFU numerator (6N + 6·L·d·T)·tokens/s. With
  --accum K, also steps of K micro-batches (gradients accumulated, loss/K each, then one update).
- decode: greedy decoding with the HF KV cache in bf16, batch 1 and 64, prompt 128, 64 new tokens.
--dry-run: tiny shapes on the CPU (checks the script without a GPU; needs transformers for train/decode).
"""
import argparse
import json
import time

import torch


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def gemm(args, dev):
    n = 1024 if args.dry_run else 8192
    dt = torch.float32 if dev == "cpu" else torch.bfloat16
    a = torch.randn(n, n, device=dev, dtype=dt)
    b = torch.randn(n, n, device=dev, dtype=dt)
    for _ in range(3):
        a @ b
    sync(dev)
    iters = 3 if args.dry_run else 50
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync(dev)
    s = (time.perf_counter() - t0) / iters
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    return {"gemm_tflops": 2 * n ** 3 / s / 1e12, "n": n, "device": name}


def llama(layers, seq, dry):
    from transformers import LlamaConfig, LlamaForCausalLM
    if dry:
        cfg = dict(hidden_size=128, intermediate_size=344, num_attention_heads=4, num_key_value_heads=4, vocab_size=1000)
    else:
        cfg = dict(hidden_size=4096, intermediate_size=11008, num_attention_heads=32, num_key_value_heads=32,
                   vocab_size=32000)
    conf = LlamaConfig(num_hidden_layers=layers, max_position_embeddings=seq, rms_norm_eps=1e-5,
                       tie_word_embeddings=False, attn_implementation="sdpa", **cfg)
    return LlamaForCausalLM(conf), conf


def train(args, dev):
    seq = 64 if args.dry_run else 2048
    L, B = args.layers, args.micro
    tried = []
    while L >= 1:
        model = opt = None
        try:
            model, conf = llama(L, seq, args.dry_run)
            model = model.to(dev)
            opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1,
                                    fused=dev == "cuda")
            while B >= 1:
                try:
                    res = {**time_train(model, opt, conf, L, B, seq, args.steps, dev), "tried": tried}
                    if args.accum > 1:
                        res["accumulated"] = time_train(model, opt, conf, L, B, seq, args.steps, dev, args.accum)
                    return res
                except torch.cuda.OutOfMemoryError as e:
                    tried.append(f"L {L} B {B}: {str(e)[:120]}")
                    opt.zero_grad(set_to_none=True)
                    torch.cuda.empty_cache()
                    B //= 2
        except torch.cuda.OutOfMemoryError as e:
            tried.append(f"L {L}: {str(e)[:120]}")
        del model, opt
        if dev == "cuda":
            torch.cuda.empty_cache()
        L, B = L * 3 // 4, args.micro
    raise RuntimeError(f"no configuration fits: {tried}")


def time_train(model, opt, conf, L, B, T, steps, dev, accum=1):
    V = conf.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, V, (accum, B, T + 1), generator=g).to(dev)
    amp = torch.autocast(device_type=dev, dtype=torch.bfloat16)

    def step():
        total = 0.0
        for k in range(accum):
            x, y = ids[k, :, :-1], ids[k, :, 1:]
            with amp:
                logits = model(input_ids=x).logits
                loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1)) / accum
            loss.backward()
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(total)

    step()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(dev)
    s = (time.perf_counter() - t0) / steps
    N = sum(p.numel() for p in model.parameters())
    d = conf.hidden_size
    n = accum * B * T
    return {"layers": L, "micro_batch": B, "micro_batches": accum, "seq": T, "params": N, "step_s": s,
            "tokens_per_s": n / s, "model_tflops": (6 * N + 6 * L * d * T) * n / s / 1e12, "loss": loss}


def decode(args, dev):
    prompt, steps = (16, 8) if args.dry_run else (128, 64)
    warm = 4  # untimed decode steps first (allocator, cuBLAS heuristics, cache growth), as gpu.ts does
    model, conf = llama(args.layers, prompt + warm + steps, args.dry_run)
    model = model.to(dev, dtype=torch.float32 if dev == "cpu" else torch.bfloat16).eval()
    res = {"layers": args.layers, "prompt": prompt, "steps": steps}
    g = torch.Generator().manual_seed(0)
    for batch in (1, 64):
        ids = torch.randint(0, conf.vocab_size, (batch, prompt), generator=g).to(dev)
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(warm):
                out = model(input_ids=nxt, past_key_values=past, use_cache=True)
                past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            sync(dev)
            t0 = time.perf_counter()
            for _ in range(steps):
                out = model(input_ids=nxt, past_key_values=past, use_cache=True)
                past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            sync(dev)
        res[f"batch{batch}_tokens_per_s"] = batch * steps / (time.perf_counter() - t0)
    return res


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["gemm", "train", "decode"])
    p.add_argument("--out", required=True)
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--micro", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--accum", type=int, default=1)
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args()
    dev = "cpu" if args.dry_run or not torch.cuda.is_available() else "cuda"
    res = {"gemm": gemm, "train": train, "decode": decode}[args.what](args, dev)
    res["device"] = res.get("device", dev)
    json.dump(res, open(args.out, "w"), indent=1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
