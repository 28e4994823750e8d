#!/usr/bin/env python3
"""Reference values for test/optim.test.ts, from PyTorch itself.

Runs torch.optim.AdamW (lr 1e-2, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 except on norm
weights and biases) for 5 steps on small fixed float32 tensors with fixed gradients, and
torch.nn.utils.clip_grad_norm_ on fixed gradients, then writes everything to
test/fixtures/optim-reference.json. Run from the repository root:

    /usr/bin/python3 scripts/optim_reference.py && npx prettier --write test/fixtures/optim-reference.json
"""

import json
import math
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "optim-reference.json"
HYPER = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weightDecay": 0.1}
STEPS = 5
CLIP_MAX_NORM = 0.5

# name, shape, weight-decayed? (loom's rule: no decay for norm weights, qk_bias and biases)
PARAMS = [
    ("core_block.0.attn.Wqkv.weight", [2, 3], True),
    ("core_block.0.attn.qk_bias", [2, 2], False),
    ("core_block.0.norm_1.weight", [3], False),
    ("adapter.bias", [3], False),
]


def fixed(shape: list[int], phase: float, scale: float) -> torch.Tensor:
    """Deterministic float32 values scale·sin(0.7·i + phase), i the flat index."""
    n = math.prod(shape)
    values = [scale * math.sin(0.7 * i + phase) for i in range(n)]
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


def flat(t: torch.Tensor) -> list[float]:
    """Exact float32 values as Python floats (JSON round-trips them bit-exactly into a Float32Array)."""
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def adamw_case() -> list[dict]:
    params = [torch.nn.Parameter(fixed(shape, 0.3 * j, 1.0)) for j, (_, shape, _) in enumerate(PARAMS)]
    initial = [flat(p) for p in params]
    groups = [
        {"params": [p for p, (_, _, d) in zip(params, PARAMS) if d], "weight_decay": HYPER["weightDecay"]},
        {"params": [p for p, (_, _, d) in zip(params, PARAMS) if not d], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]), eps=HYPER["eps"])
    grads: list[list[list[float]]] = [[] for _ in PARAMS]
    for step in range(STEPS):
        for j, (p, (_, shape, _)) in enumerate(zip(params, PARAMS)):
            p.grad = fixed(shape, 1.3 * step + 0.5 * j, 0.2 + 0.1 * step)
            grads[j].append(flat(p.grad))
        opt.step()
    return [
        {"name": name, "shape": shape, "initial": initial[j], "grads": grads[j], "final": flat(params[j])}
        for j, (name, shape, _) in enumerate(PARAMS)
    ]


def clip_case(max_norm: float, scale: float) -> dict:
    params = [torch.nn.Parameter(torch.zeros(shape)) for _, shape, _ in PARAMS]
    for j, (p, (_, shape, _)) in enumerate(zip(params, PARAMS)):
        p.grad = fixed(shape, 0.9 * j, scale)
    grads = [flat(p.grad) for p in params]
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return {
        "maxNorm": max_norm,
        "grads": grads,
        "totalNorm": float(total),
        "clipped": [flat(p.grad) for p in params],
    }


def main() -> None:
    fixture = {
        "generator": "scripts/optim_reference.py",
        "torch": torch.__version__,
        "hyper": HYPER,
        "steps": STEPS,
        "adamw": adamw_case(),
        "clip": [clip_case(CLIP_MAX_NORM, 1.0), clip_case(10.0, 1.0)],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
