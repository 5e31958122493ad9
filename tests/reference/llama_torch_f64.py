"""Independent PyTorch float64 Llama-2 forward/loss, used to cross-check tests/reference/llama_f64.ts.

Written in the style of Hugging Face modeling_llama (rotate_half, repeat_kv, causal mask) with plain
torch ops, so it shares no code with the TypeScript reference.

Usage: python3 llama_torch_f64.py IN.json IN.bin OUT.bin [IN2.json IN2.bin OUT2.bin ...]
(several cases per process to pay the torch import once).

IN.json: {"config": {dim, nLayers, nHeads, nKvHeads, ffnDim, vocabSize, normEps, ropeTheta},
          "batch": B, "seq": T, "tokens": [...], "targets": [...], "mask": [...],
          "params": [[name, shape], ...], "grads": bool}
IN.bin:  every parameter, in the order of "params", as little-endian float64, concatenated.
OUT.bin: little-endian float64: logits [B*T*vocab], then the loss, then (if "grads") d loss / d param
         for every parameter in the order of "params".
"""

import json
import sys

import numpy as np
import torch
import torch.nn.functional as F


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(cfg, p, tokens, batch, seq):
    dim, n_heads, n_kv = cfg["dim"], cfg["nHeads"], cfg["nKvHeads"]
    hd = dim // n_heads
    eps = cfg["normEps"]

    inv_freq = 1.0 / (cfg["ropeTheta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    pos = torch.arange(seq, dtype=torch.float64)
    freqs = torch.outer(pos, inv_freq)  # [T, hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, hd]
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]  # [1, 1, T, hd]
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()

    x = p["model.embed_tokens.weight"][tokens.view(batch, seq)]  # [B, T, dim]
    for i in range(cfg["nLayers"]):
        pre = f"model.layers.{i}."
        h = rms_norm(x, p[pre + "input_layernorm.weight"], eps)
        q = F.linear(h, p[pre + "self_attn.q_proj.weight"]).view(batch, seq, n_heads, hd).transpose(1, 2)
        k = F.linear(h, p[pre + "self_attn.k_proj.weight"]).view(batch, seq, n_kv, hd).transpose(1, 2)
        v = F.linear(h, p[pre + "self_attn.v_proj.weight"]).view(batch, seq, n_kv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = n_heads // n_kv  # HF repeat_kv: query head h uses kv head h // rep
        k = k[:, :, None].expand(batch, n_kv, rep, seq, hd).reshape(batch, n_heads, seq, hd)
        v = v[:, :, None].expand(batch, n_kv, rep, seq, hd).reshape(batch, n_heads, seq, hd)
        scores = (q @ k.transpose(-1, -2)) / (hd**0.5)
        scores = scores.masked_fill(~causal, float("-inf"))
        a = F.softmax(scores, dim=-1) @ v  # [B, H, T, hd]
        a = a.transpose(1, 2).reshape(batch, seq, n_heads * hd)
        x = x + F.linear(a, p[pre + "self_attn.o_proj.weight"])
        h2 = rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps)
        mlp = F.silu(F.linear(h2, p[pre + "mlp.gate_proj.weight"])) * F.linear(h2, p[pre + "mlp.up_proj.weight"])
        x = x + F.linear(mlp, p[pre + "mlp.down_proj.weight"])
    x = rms_norm(x, p["model.norm.weight"], eps)
    return F.linear(x, p["lm_head.weight"]).reshape(batch * seq, -1)


def run_case(in_json, in_bin, out_bin):
    with open(in_json) as f:
        spec = json.load(f)
    cfg, batch, seq = spec["config"], spec["batch"], spec["seq"]
    flat = torch.from_numpy(np.fromfile(in_bin, dtype="<f8"))
    params, names, off = {}, [], 0
    for name, shape in spec["params"]:
        n = 1
        for s in shape:
            n *= s
        params[name] = flat[off : off + n].reshape(shape).clone().requires_grad_(True)
        names.append(name)
        off += n
    assert off == flat.numel(), f"{flat.numel()} values for {off} expected"

    tokens = torch.tensor(spec["tokens"], dtype=torch.long)
    logits = forward(cfg, params, tokens, batch, seq)
    mask = torch.tensor(spec["mask"], dtype=torch.float64)
    targets = torch.tensor(spec["targets"], dtype=torch.long).clamp(0, cfg["vocabSize"] - 1)
    ce = F.cross_entropy(logits, targets, reduction="none")
    total = mask.sum()
    loss = (mask * ce).sum() / total if total != 0 else (mask * ce).sum() * 0

    out = [logits.detach().reshape(-1), loss.detach().reshape(1)]
    if spec.get("grads"):
        grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
        out += [(g if g is not None else torch.zeros_like(params[n])).reshape(-1) for n, g in zip(names, grads)]
    torch.cat(out).numpy().astype("<f8").tofile(out_bin)


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3 != 0:
        sys.exit(__doc__)
    for i in range(0, len(args), 3):
        run_case(*args[i : i + 3])


if __name__ == "__main__":
    main()
