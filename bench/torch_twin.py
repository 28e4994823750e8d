#!/usr/bin/python3
"""PyTorch twin of loom's model, for side-by-side benchmarks (bench/compare.sh).

The exact Huginn-0125 architecture (docs/huginn-reference.md §1) in plain torch 1.13 ops (no
SDPA in 1.13): scaled embedding, prelude, adapter(concat[s, e]) + core looped r times, ln_f,
coda, ln_f again, tied head; sandwich RMSNorm blocks, fused Wqkv with qk_bias before interleaved
RoPE, causal softmax attention, SwiGLU MLP with fc rows [gate | up]. Same RavenConfig JSON as
`loom bench`. Random weights (Takase init); timing does not depend on their values.

  /usr/bin/python3 bench/torch_twin.py train --config C.json --batch B --seq S \
      --no-grad-steps n --grad-steps k [--reps R --warmup W] [--json OUT]
  /usr/bin/python3 bench/torch_twin.py generate --config C.json --prompt-len P --new-tokens N \
      --steps R [--reps R --warmup W] [--json OUT]
  /usr/bin/python3 bench/torch_twin.py gemm --shapes SHAPES.json [--json OUT]
  /usr/bin/python3 bench/torch_twin.py check [--fixtures DIR]   # the twin vs the reference

`check` loads the reference fixtures (weights + cases from the official PyTorch code) and
compares the twin's logits (r = 4), training loss and all gradients (num_steps [3, 2]) and
cached greedy tokens (r = 8): it proves the twin computes the same model loom does.

Threads: torch.set_num_threads(OMP_NUM_THREADS or 1); OpenBLAS reads OPENBLAS_NUM_THREADS.
Every mode prints one JSON object (also written to --json) and a readable line on stderr.
"""
import argparse
import json
import math
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


# ---------------------------------------------------------------------------------------------
# config and parameters


def load_config(path):
    with open(path) as f:
        j = json.load(f)
    c = {
        "n_embd": j.get("n_embd", j.get("hidden_size", 5280)),
        "n_heads": j.get("n_heads", j.get("num_attention_heads", 55)),
        "n_prelude": j.get("n_layers_in_prelude", 2),
        "n_core": j.get("n_layers_in_recurrent_block", 4),
        "n_coda": j.get("n_layers_in_coda", 2),
        "vocab": j.get("padded_vocab_size", j.get("vocab_size", 65536)),
        "block_size": j.get("block_size", 4096),
        "hidden": j.get("intermediate_size", 17920),
        "rope_base": j.get("rope_base", 50000),
        "eps": j.get("norm_eps", 1e-6),
        "qk_bias": j.get("qk_bias", True),
        "tie": j.get("tie_embeddings", True),
        "injection": j.get("injection_type", "linear"),
        "mean_recurrence": j.get("mean_recurrence", 32),
    }
    if not c["tie"]:
        raise SystemExit("torch_twin: only tie_embeddings = true is implemented")
    if c["injection"] != "linear":
        raise SystemExit("torch_twin: only injection_type = linear is implemented")
    return c


def block_names(c):
    names = [f"transformer.prelude.{i}" for i in range(c["n_prelude"])]
    names += [f"transformer.core_block.{i}" for i in range(c["n_core"])]
    names += [f"transformer.coda.{i}" for i in range(c["n_coda"])]
    return names


def init_params(c, seed=0):
    """Takase init as loom's initParams: truncated normals at ±3σ, norms 1, qk_bias 0."""
    g = torch.Generator().manual_seed(seed)
    C, N, V, H = c["n_embd"], c["hidden"], c["vocab"], c["n_heads"]
    std = math.sqrt(2 / (5 * C))
    depth = c["n_prelude"] + c["n_coda"] + c["n_core"] * c["mean_recurrence"]
    out_std = std / math.sqrt(2 * depth)

    def normal(shape, s):
        t = torch.randn(*shape, generator=g) * s
        return t.clamp_(-3 * s, 3 * s)

    p = {"transformer.wte.weight": normal((V, C), std)}
    for b in block_names(c):
        p[f"{b}.norm_1.weight"] = torch.ones(C)
        p[f"{b}.attn.Wqkv.weight"] = normal((3 * C, C), std)
        if c["qk_bias"]:
            p[f"{b}.attn.qk_bias"] = torch.zeros(2, 1, H, C // H)
        p[f"{b}.attn.proj.weight"] = normal((C, C), out_std)
        p[f"{b}.norm_2.weight"] = torch.ones(C)
        p[f"{b}.norm_3.weight"] = torch.ones(C)
        p[f"{b}.mlp.fc.weight"] = torch.cat([normal((N, C), std), normal((N, C), out_std)])
        p[f"{b}.mlp.proj.weight"] = normal((C, N), out_std)
        p[f"{b}.norm_4.weight"] = torch.ones(C)
    p["transformer.adapter.weight"] = normal((C, 2 * C), std)
    p["transformer.ln_f.weight"] = torch.ones(C)
    return {k: v.contiguous().requires_grad_(True) for k, v in p.items()}


def rope_table(c):
    D = c["n_embd"] // c["n_heads"]
    inv = 1.0 / (c["rope_base"] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    freqs = torch.outer(torch.arange(c["block_size"], dtype=torch.float32), inv)
    return torch.cos(freqs), torch.sin(freqs)  # (maxPos, D/2)


# ---------------------------------------------------------------------------------------------
# the model


class Twin:
    def __init__(self, c, params):
        self.c = c
        self.p = params
        self.cos, self.sin = rope_table(c)
        self.blocks = block_names(c)
        self.C, self.H = c["n_embd"], c["n_heads"]
        self.D = self.C // self.H

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["eps"]) * w

    def rope(self, x, pos):  # x (B, T, H, D), interleaved pairs
        cos = self.cos[pos].unsqueeze(1)  # (T, 1, D/2)
        sin = self.sin[pos].unsqueeze(1)
        xr = x.reshape(*x.shape[:-1], self.D // 2, 2)
        a, b = xr[..., 0], xr[..., 1]
        return torch.stack((a * cos - b * sin, b * cos + a * sin), -1).flatten(-2)

    def attn(self, name, x, pos, cache, slot):
        B, T, C = x.shape
        H, D = self.H, self.D
        qkv = F.linear(x, self.p[f"{name}.attn.Wqkv.weight"])
        q, k, v = qkv.view(B, T, 3, H, D).unbind(2)
        bias = self.p.get(f"{name}.attn.qk_bias")
        if bias is not None:
            q = q + bias[0]
            k = k + bias[1]
        q = self.rope(q, pos).transpose(1, 2)  # (B, H, T, D)
        k = self.rope(k, pos).transpose(1, 2)
        v = v.transpose(1, 2)
        if cache is not None:
            k, v = cache.update(slot, k, v, pos)
        tk = k.shape[2]
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(D))
        if T > 1:  # bottom-right aligned causal mask (plain causal when T == tk)
            mask = torch.ones(T, tk, dtype=torch.bool).tril_(tk - T)
            scores = scores.masked_fill(~mask, float("-inf"))
        y = torch.matmul(torch.softmax(scores, -1), v)
        y = y.transpose(1, 2).reshape(B, T, C)
        return F.linear(y, self.p[f"{name}.attn.proj.weight"])

    def mlp(self, name, x):
        gu = F.linear(x, self.p[f"{name}.mlp.fc.weight"])
        g, u = gu.chunk(2, -1)
        return F.linear(F.silu(g) * u, self.p[f"{name}.mlp.proj.weight"])

    def block(self, name, x, pos, cache, slot):
        p = self.p
        h = self.rms(x + self.attn(name, self.rms(x, p[f"{name}.norm_1.weight"]), pos, cache, slot),
                     p[f"{name}.norm_2.weight"])
        return self.rms(h + self.mlp(name, self.rms(h, p[f"{name}.norm_3.weight"])),
                        p[f"{name}.norm_4.weight"])

    def embed(self, ids, pos, cache):
        x = F.embedding(ids, self.p["transformer.wte.weight"]) * math.sqrt(self.C)
        for j in range(self.c["n_prelude"]):
            x = self.block(f"transformer.prelude.{j}", x, pos, cache, j)
        return x

    def step(self, s, e, t, pos, cache):
        x = F.linear(torch.cat([s, e], -1), self.p["transformer.adapter.weight"])
        nP, nC = self.c["n_prelude"], self.c["n_core"]
        for j in range(nC):
            x = self.block(f"transformer.core_block.{j}", x, pos, cache, nP + nC * t + j)
        return x

    def decode(self, s, pos, cache, last_only=False):
        lnf = self.p["transformer.ln_f.weight"]
        z = self.rms(s, lnf)
        for j in range(self.c["n_coda"]):
            z = self.block(f"transformer.coda.{j}", z, pos, cache, -(j + 1))
        if last_only:
            z = z[:, -1:]
        return F.linear(self.rms(z, lnf), self.p["transformer.wte.weight"])

    def forward(self, ids, no_grad_steps, grad_steps, cache=None, pos=None, last_only=False):
        T = ids.shape[1]
        if pos is None:
            pos = torch.arange(T)
        e = self.embed(ids, pos, cache)
        s = torch.zeros_like(e)
        with torch.no_grad():
            for t in range(no_grad_steps):
                s = self.step(s, e, t, pos, cache)
        for t in range(no_grad_steps, no_grad_steps + grad_steps):
            s = self.step(s, e, t, pos, cache)
        return self.decode(s, pos, cache, last_only)


class KVCache:
    """Per-(layer, iteration) slot, preallocated to max_len and filled in place (batch 1)."""

    def __init__(self, H, D, max_len):
        self.H, self.D, self.max_len = H, D, max_len
        self.k, self.v, self.len = {}, {}, {}

    def update(self, slot, k, v, pos):
        if slot not in self.k:
            self.k[slot] = torch.empty(k.shape[0], self.H, self.max_len, self.D)
            self.v[slot] = torch.empty(k.shape[0], self.H, self.max_len, self.D)
        start, T = int(pos[0]), k.shape[2]
        self.k[slot][:, :, start : start + T] = k
        self.v[slot][:, :, start : start + T] = v
        self.len[slot] = start + T
        n = self.len[slot]
        return self.k[slot][:, :, :n], self.v[slot][:, :, :n]


def optimizer(params):
    decay = [p for n, p in params.items() if not (("norm_" in n) or ("ln_f" in n) or ("qk_bias" in n))]
    rest = [p for n, p in params.items() if (("norm_" in n) or ("ln_f" in n) or ("qk_bias" in n))]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    except TypeError:
        return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8)


def random_batch(c, B, S, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, c["vocab"], (B, S), generator=g)
    return ids, torch.roll(ids, -1, 1)  # targets: tokens shifted by one, cyclically


def greedy_generate(m, prompt, new_tokens, r, max_len):
    """Batch-1 cached greedy decode, s_0 = 0. Returns tokens, prefill seconds, decode seconds."""
    with torch.inference_mode():
        cache = KVCache(m.H, m.D, max_len)
        ids = torch.tensor([prompt])
        t0 = time.perf_counter()
        logits = m.forward(ids, r, 0, cache, torch.arange(len(prompt)), last_only=True)
        tok = int(logits[0, -1].argmax())
        t1 = time.perf_counter()
        out = [tok]
        for i in range(new_tokens - 1):
            p = len(prompt) + i
            logits = m.forward(torch.tensor([[tok]]), r, 0, cache, torch.tensor([p]))
            tok = int(logits[0, -1].argmax())
            out.append(tok)
        t2 = time.perf_counter()
    return out, t1 - t0, t2 - t1


# ---------------------------------------------------------------------------------------------
# modes


def stats_ms(times):
    ms = sorted(t * 1000 for t in times)
    return {"median": statistics.median(ms), "min": ms[0], "max": ms[-1]}


def blas_lib():
    """Which BLAS torch.mm runs on: Debian's torch uses whatever libblas.so.3 resolves to."""
    try:
        maps = open("/proc/self/maps").read()
    except OSError:
        return "unknown"
    if "libopenblas" in maps:
        return "openblas"
    return "reference (netlib: ~1 GFLOP/s; install libopenblas0-pthread)" if "blas/libblas" in maps else "other"


def threads_info():
    return {
        "blas": blas_lib(),
        "torch": torch.get_num_threads(),
        "omp": os.environ.get("OMP_NUM_THREADS", "unset"),
        "openblas": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
        "coretype": os.environ.get("OPENBLAS_CORETYPE", "auto"),
    }


def mode_train(a):
    c = load_config(a.config)
    base = rss_mb()
    m = Twin(c, init_params(c))
    opt = optimizer(m.p)
    ids, labels = random_batch(c, a.batch, a.seq)
    V = c["vocab"]
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        logits = m.forward(ids, a.no_grad_steps, a.grad_steps)
        loss = F.cross_entropy(logits.view(-1, V), labels.view(-1))
        loss.backward()
        opt.step()
        losses.append(float(loss))

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    s = stats_ms(times)
    out = {
        "stepMs": s["median"],
        "stepMsMin": s["min"],
        "stepMsMax": s["max"],
        "reps": a.reps,
        "lossFirst": losses[0],
        "lossLast": losses[-1],
        "backend": "torch " + torch.__version__,
        "threads": threads_info(),
        "peakRssMB": rss_mb(),
        "baseRssMB": base,
    }
    line = (f"torch train: step {s['median']:.1f} ms median ({s['min']:.1f}..{s['max']:.1f}, "
            f"{a.reps} reps), loss {losses[0]:.3f} -> {losses[-1]:.3f}, peak RSS {out['peakRssMB']:.0f} MB")
    return out, line


def mode_generate(a):
    c = load_config(a.config)
    base = rss_mb()
    m = Twin(c, init_params(c))
    for t in m.p.values():
        t.requires_grad_(False)
    prompt = [(i * 7 + 3) % c["vocab"] for i in range(a.prompt_len)]
    max_len = a.prompt_len + a.new_tokens
    if max_len > c["block_size"]:
        raise SystemExit(f"torch_twin: prompt + new tokens = {max_len} > block_size {c['block_size']}")
    for _ in range(a.warmup):
        greedy_generate(m, prompt, min(a.new_tokens, 8), a.steps, max_len)
    pre, rate, toks = [], [], None
    for _ in range(a.reps):
        toks, tp, td = greedy_generate(m, prompt, a.new_tokens, a.steps, max_len)
        pre.append(tp)
        rate.append((a.new_tokens - 1) / td)
    out = {
        "tokensPerSec": statistics.median(rate),
        "tokensPerSecMax": max(rate),
        "tokensPerSecMin": min(rate),
        "prefillMs": stats_ms(pre)["median"],
        "reps": a.reps,
        "tokens": toks,
        "backend": "torch " + torch.__version__,
        "threads": threads_info(),
        "peakRssMB": rss_mb(),
        "baseRssMB": base,
    }
    line = (f"torch generate: {out['tokensPerSec']:.1f} tok/s median ({min(rate):.1f}..{max(rate):.1f}), "
            f"prefill {out['prefillMs']:.1f} ms, r = {a.steps}")
    return out, line


def mode_gemm(a):
    with open(a.shapes) as f:
        spec = json.load(f)
    shapes = spec["shapes"] if isinstance(spec, dict) else spec
    g = torch.Generator().manual_seed(7)
    rows = []
    for s in shapes:
        m, n, k, ta, tb = s["m"], s["n"], s["k"], s["transA"], s["transB"]
        A = torch.rand(*((k, m) if ta else (m, k)), generator=g) - 0.5
        Bm = torch.rand(*((n, k) if tb else (k, n)), generator=g) - 0.5
        opA = A.t() if ta else A
        opB = Bm.t() if tb else Bm
        Cm = torch.zeros(m, n)
        acc = s.get("accumulate", False)

        def call():
            if acc:
                Cm.addmm_(opA, opB)
            else:
                torch.mm(opA, opB, out=Cm)

        call()
        if not acc:  # sampled entries vs a float64 dot product
            want = opA.double() @ opB.double()
            err = (Cm.double() - want).abs().max().item()
            if err > 1e-4 * max(1.0, k ** 0.5):
                raise SystemExit(f"torch_twin gemm: wrong result at {s}: {err}")
        times = []
        for _ in range(a.reps):
            n_calls, t0 = 0, time.perf_counter()
            while True:
                call()
                n_calls += 1
                if time.perf_counter() - t0 >= a.min_ms / 1000:
                    break
            times.append((time.perf_counter() - t0) / n_calls)
        times.sort()
        gf = lambda t: 2 * m * n * k / t / 1e9  # noqa: E731
        rows.append({**s, "gflops": gf(times[0]), "gflopsMedian": gf(times[len(times) // 2]),
                     "ms": times[0] * 1000})
    out = {"shapes": rows, "backend": "torch.mm (OpenBLAS)", "threads": threads_info()}
    line = "torch gemm: " + ", ".join(f"{r['m']}x{r['k']}x{r['n']} {r['gflops']:.0f}" for r in rows)
    return out, line


# --- check: the twin against the reference fixtures ------------------------------------------


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64, "I32": np.int32}[info["dtype"]]
        out[name] = torch.from_numpy(np.frombuffer(data[lo:hi], dtype=dt).reshape(info["shape"]).copy())
    return out


def mode_check(a):
    d = a.fixtures
    c = load_config(os.path.join(d, "config.json"))
    w = read_safetensors(os.path.join(d, "weights.safetensors"))
    cases = read_safetensors(os.path.join(d, "cases.safetensors"))
    params = {k: v.clone().requires_grad_(True) for k, v in w.items() if k != "freqs_cis"}
    m = Twin(c, params)
    res = {}
    with torch.no_grad():
        logits = m.forward(cases["input_ids"], 4, 0)
    res["fwd.n4.logits"] = (logits - cases["fwd.n4.logits"]).abs().max().item()
    ids, labels = cases["train.input_ids"], cases["train.labels"]
    logits = m.forward(ids, 3, 2)
    loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), labels.reshape(-1))
    loss.backward()
    res["train.loss"] = abs(loss.item() - cases["train.loss"].item())
    worst = 0.0
    for name, p in params.items():
        ref = cases[f"grad.{name}"]
        worst = max(worst, ((p.grad - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item())
    res["grad (max rel to max|grad|)"] = worst
    prompt = cases["gen.prompt"][0].tolist()
    for p in params.values():
        p.requires_grad_(False)
    toks, _, _ = greedy_generate(m, prompt, 10, 8, 16)
    res["gen.tokens equal"] = toks == cases["gen.tokens"][0].tolist()
    ok = (res["fwd.n4.logits"] <= 1e-4 and res["train.loss"] <= 1e-5
          and worst <= 1e-4 and res["gen.tokens equal"])
    res["ok"] = ok
    line = "torch twin vs reference fixtures: " + ("PASS " if ok else "FAIL ") + json.dumps(res)
    if not ok:
        print(line, file=sys.stderr)
        raise SystemExit(1)
    return res, line


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["train", "generate", "gemm", "check"])
    ap.add_argument("--config")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--no-grad-steps", type=int, default=4)
    ap.add_argument("--grad-steps", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--min-ms", type=float, default=100)
    ap.add_argument("--shapes")
    ap.add_argument("--fixtures", default=os.path.join(os.path.dirname(__file__),
                                                        "../../shared/fixtures/huginn-reference"))
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(0)
    defaults = {"train": (10, 2), "generate": (5, 1), "gemm": (5, 0), "check": (1, 0)}[a.mode]
    a.reps = defaults[0] if a.reps is None else a.reps
    a.warmup = defaults[1] if a.warmup is None else a.warmup
    if a.mode in ("train", "generate") and not a.config:
        ap.error(f"{a.mode} needs --config")
    if a.mode == "gemm" and not a.shapes:
        ap.error("gemm needs --shapes (the JSON `loom bench gemm` writes)")
    if a.mode == "generate" and a.new_tokens < 2:
        ap.error("--new-tokens must be >= 2")
    out, line = {"train": mode_train, "generate": mode_generate, "gemm": mode_gemm,
                 "check": mode_check}[a.mode](a)
    print(line, file=sys.stderr)
    text = json.dumps(out)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
