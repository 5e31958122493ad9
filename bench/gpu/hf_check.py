"""CUDA logits against transformers' LlamaForCausalLM (fp32, eager attention) on the same safetensors weights.

Usage: python3 bench/gpu/hf_check.py DIR OUT.json
DIR is what `bench/gpu/gpu.ts check` wrote: config.json, model.safetensors (F32), batch.json and
cuda_logits.f32 ([B, T, V] float32 from the CUDA backend). Passes when the logits agree within 2e-2 relative L2
and the masked mean cross-entropy within 1e-2 relative. Exit status 1 on failure, 2 when transformers is absent.
"""
import json
import os
import struct
import sys

import torch


def load_safetensors(path):
    """The F32 tensors of a safetensors file (read with the format's 8-byte header length + JSON header)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: dtype {info['dtype']}"
        b, e = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(info["shape"])
    return out


def masked_ce(logits, targets, mask):
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), targets.reshape(-1),
                                           reduction="none")
    return float((ce * mask.reshape(-1).double()).sum() / mask.double().sum())


def main():
    src, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(src, "config.json")))
    batch = json.load(open(os.path.join(src, "batch.json")))
    B, T, V = batch["B"], batch["T"], cfg["vocab_size"]
    tokens = torch.tensor(batch["tokens"], dtype=torch.long).reshape(B, T)
    targets = torch.tensor(batch["targets"], dtype=torch.long).reshape(B, T)
    mask = torch.tensor(batch["mask"], dtype=torch.float32).reshape(B, T)
    with open(os.path.join(src, "cuda_logits.f32"), "rb") as f:
        ours = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(B, T, V)
    state = load_safetensors(os.path.join(src, "model.safetensors"))
    result = {"tensors": len(state)}
    try:
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError as e:
        result.update(ok=False, skipped=f"transformers is not installed: {e}")
        json.dump(result, open(out, "w"))
        print(json.dumps(result))
        sys.exit(2)
    fields = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type", "torch_dtype")}
    model = LlamaForCausalLM(LlamaConfig(**fields, attn_implementation="eager"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if "rotary" not in k]
    assert not missing and not unexpected, f"state dict mismatch: missing {missing}, unexpected {unexpected}"
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(dev).float().eval()
    with torch.no_grad():
        ref = model(tokens.to(dev)).logits.float().cpu()
    rel = float((ours - ref).norm() / ref.norm())
    loss_ref, loss_ours = masked_ce(ref, targets, mask), masked_ce(ours, targets, mask)
    loss_rel = abs(loss_ours - loss_ref) / abs(loss_ref)
    argmax_agree = float((ours.argmax(-1) == ref.argmax(-1)).float().mean())
    result.update(ok=rel < 2e-2 and loss_rel < 1e-2, logits_rel_l2=rel, loss_hf=loss_ref, loss_cuda=loss_ours,
                  loss_rel=loss_rel, argmax_agreement=argmax_agree, device=dev)
    json.dump(result, open(out, "w"))
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
