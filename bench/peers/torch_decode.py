"""PyTorch peer for `deno task bench decode`: the same Llama-2 (fp32, CPU) decoding with a KV cache at batch 1
and 16, and log-likelihood scoring of 4 one-token options after a shared 256-token context (prefill once,
then the options), timed on the same machine. Prints one JSON line.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def build(c):
    torch.manual_seed(0)
    d, L, H, KV, Fd, V = c["dim"], c["n_layers"], c["n_heads"], c["n_kv_heads"], c["ffn_dim"], c["vocab_size"]
    hd = d // H
    g = lambda *s: torch.randn(*s) * 0.02
    layers = [dict(q=g(H * hd, d), k=g(KV * hd, d), v=g(KV * hd, d), o=g(d, H * hd), gate=g(Fd, d), up=g(Fd, d),
                   down=g(d, Fd), n1=torch.ones(d), n2=torch.ones(d)) for _ in range(L)]
    inv = 10000.0 ** (-torch.arange(0, hd, 2).float() / hd)
    ang = torch.outer(torch.arange(c["max_seq"]).float(), inv)
    ang = torch.cat((ang, ang), -1)
    return dict(emb=g(V, d), layers=layers, norm=torch.ones(d), head=g(V, d), cos=ang.cos(), sin=ang.sin(),
                H=H, KV=KV, hd=hd)


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., h:], x[..., :h]), -1) * sin


def step(m, tokens, cache, pos):
    """tokens [B, T] at positions pos..pos+T-1; cache: list of (k, v) [B, KV, pos, hd] per layer."""
    B, T = tokens.shape
    H, KV, hd = m["H"], m["KV"], m["hd"]
    x = m["emb"][tokens]
    cos, sin = m["cos"][pos:pos + T], m["sin"][pos:pos + T]
    for i, l in enumerate(m["layers"]):
        h = rms(x, l["n1"])
        q = (h @ l["q"].T).view(B, T, H, hd).transpose(1, 2)
        k = (h @ l["k"].T).view(B, T, KV, hd).transpose(1, 2)
        v = (h @ l["v"].T).view(B, T, KV, hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if cache[i] is not None:
            k = torch.cat((cache[i][0], k), 2)
            v = torch.cat((cache[i][1], v), 2)
        cache[i] = (k, v)
        kk = k.repeat_interleave(H // KV, 1)
        vv = v.repeat_interleave(H // KV, 1)
        att = (q @ kk.transpose(-1, -2)) / math.sqrt(hd)
        S = kk.shape[2]
        mask = torch.full((T, S), float("-inf")).triu(S - T + 1)
        y = ((att + mask).softmax(-1) @ vv).transpose(1, 2).reshape(B, T, H * hd)
        x = x + y @ l["o"].T
        h = rms(x, l["n2"])
        x = x + (F.silu(h @ l["gate"].T) * (h @ l["up"].T)) @ l["down"].T
    return rms(x, m["norm"]) @ m["head"].T


def main():
    c = json.loads(sys.argv[1])
    torch.set_num_threads(c["threads"])
    m = build(c)
    out = {"peer": f"pytorch {torch.__version__} (cpu, {c['threads']} threads)"}
    with torch.no_grad():
        for B in (1, 16):
            cache = [None] * c["n_layers"]
            prompt = torch.randint(0, c["vocab_size"], (B, c["prompt"]))
            logits = step(m, prompt, cache, 0)
            tok = logits[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for i in range(c["new_tokens"]):
                logits = step(m, tok, cache, c["prompt"] + i)
                tok = logits[:, -1].argmax(-1, keepdim=True)
            out[f"decode_b{B}_tokens_per_s"] = B * c["new_tokens"] / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(c["questions"]):
            cache = [None] * c["n_layers"]
            ctx = torch.randint(0, c["vocab_size"], (1, c["context"]))
            last = step(m, ctx, cache, 0)[:, -1].log_softmax(-1)
            scores = [float(last[0, int(t)]) for t in torch.randint(0, c["vocab_size"], (4,))]
        out["loglik_questions_per_s"] = c["questions"] / (time.perf_counter() - t0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
