#!/usr/bin/env bash
# loom vs its PyTorch twin (bench/torch_twin.py), side by side, on one RavenConfig: training step,
# batch-1 cached generation, GEMM at the training shapes (torch.mm = OpenBLAS as the yardstick),
# peak memory. Prints the ratios against torch's faster thread setting.
#
#   bench/compare.sh [CONFIG.json]        (default configs/bench.json)
#   ROUNDS=3 bench/compare.sh             interleaved rounds (the machine is shared and noisy)
#   QUICK=1 bench/compare.sh              fewer repetitions, no gemm (a smoke run)
#
# PyTorch gets its best on this machine, for its runs only: AVX-512 OpenBLAS kernels
# (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset), glibc malloc kept from mmap churn, and 1 thread
# (OMP 1, BLAS 1) or 2 (OMP 1, BLAS 2: no stacked pools), whichever is faster. loom runs with
# its default threads (LOOM_THREADS to override). Results: $OUT (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=${1:-configs/bench.json}
OUT=${OUT:-$(mktemp -d /tmp/loom-compare.XXXXXX)}
ROUNDS=${ROUNDS:-1}
B=${B:-16} S=${S:-128} NG=${NG:-4} KG=${KG:-2}
P=${P:-32} NEW=${NEW:-64} R=${R:-8}
if [[ ${QUICK:-0} == 1 ]]; then
  TRAIN_REPS=(--reps 3 --warmup 1) GEN_REPS=(--reps 2 --warmup 1)
else
  TRAIN_REPS=(--reps 10 --warmup 2) GEN_REPS=(--reps 5 --warmup 1)
fi
PY=/usr/bin/python3 # Debian's python3-torch; the pyenv python3 on PATH has no torch
mkdir -p "$OUT"

# Debian's torch calls whatever libblas.so.3 resolves to. Where the system alternative is the
# netlib reference BLAS (~1 GFLOP/s), point torch alone at OpenBLAS (apt libopenblas0-pthread).
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-pthread
TORCH_LD=${LD_LIBRARY_PATH:-}
[[ -e $OPENBLAS_DIR/libblas.so.3 ]] && TORCH_LD=$OPENBLAS_DIR${TORCH_LD:+:$TORCH_LD}
torch_env() { # $1 = OpenBLAS threads; the rest: the command
  local blas=$1
  shift
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH="$TORCH_LD" PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=1073741824 \
    MALLOC_TOP_PAD_=268435456 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS="$blas" "$@"
}
loom() { node bin/loom.js "$@"; }

echo "# loom vs PyTorch twin: $CONFIG, results in $OUT"
echo "# load before: $(uptime)"
uptime >"$OUT/uptime-before.txt"
torch_env 1 $PY bench/torch_twin.py check >/dev/null # the twin computes the reference's model
blas=$(torch_env 1 $PY -c 'import sys; sys.path.insert(0, "bench"); import torch, torch_twin; torch.mm(torch.ones(2, 2), torch.ones(2, 2)); print(torch_twin.blas_lib())')
echo "# torch BLAS: $blas"
[[ $blas == openblas ]] || echo "# WARNING: torch is not on OpenBLAS; its numbers are not its best" >&2

train_args=(--config "$CONFIG" --batch "$B" --seq "$S" --no-grad-steps "$NG" --grad-steps "$KG")
gen_args=(--config "$CONFIG" --prompt-len "$P" --new-tokens "$NEW" --steps "$R")
for ((i = 1; i <= ROUNDS; i++)); do
  echo "# round $i/$ROUNDS: train"
  loom bench train "${train_args[@]}" "${TRAIN_REPS[@]}" --json "$OUT/loom-train-$i.json"
  for t in 1 2; do
    torch_env $t $PY bench/torch_twin.py train "${train_args[@]}" "${TRAIN_REPS[@]}" \
      --json "$OUT/torch$t-train-$i.json" >/dev/null
  done
  echo "# round $i/$ROUNDS: generate"
  loom bench generate "${gen_args[@]}" "${GEN_REPS[@]}" --json "$OUT/loom-generate-$i.json"
  for t in 1 2; do
    torch_env $t $PY bench/torch_twin.py generate "${gen_args[@]}" "${GEN_REPS[@]}" \
      --json "$OUT/torch$t-generate-$i.json" >/dev/null
  done
done
if [[ ${QUICK:-0} != 1 ]]; then
  echo "# gemm at the training shapes"
  loom bench gemm --config "$CONFIG" --batch "$B" --seq "$S" --no-grad-steps "$NG" \
    --grad-steps "$KG" --threads 1,2 --json "$OUT/loom-gemm.json"
  for t in 1 2; do
    torch_env $t $PY bench/torch_twin.py gemm --shapes "$OUT/loom-gemm.json" \
      --json "$OUT/torch$t-gemm.json" >/dev/null
  done
fi
uptime >"$OUT/uptime-after.txt"
echo "# load after: $(cat "$OUT/uptime-after.txt")"

$PY - "$OUT" "$ROUNDS" <<'EOF'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
def runs(side, kind):
    return [r for r in (load(f"{side}-{kind}-{i}.json") for i in range(1, rounds + 1)) if r]

rows = []
def row(metric, loom, torch, ratio, target):
    rows.append((metric, loom, torch, ratio, target))

# training step: per side, the best single step and the median of the per-round medians
lt = runs("loom", "train")
tt = {t: runs(f"torch{t}", "train") for t in (1, 2)}
med = lambda rs, k: statistics.median(r[k] for r in rs)
best_t = min(tt, key=lambda t: med(tt[t], "stepMs"))
for t in (1, 2):
    row(f"torch train step, {t} thread(s) [ms]", "", f"best {min(r['stepMsMin'] for r in tt[t]):.0f} / median {med(tt[t], 'stepMs'):.0f}", "", "")
lm, tm = med(lt, "stepMs"), med(tt[best_t], "stepMs")
lb, tb = min(r["stepMsMin"] for r in lt), min(r["stepMsMin"] for r in tt[best_t])
row(f"train step [ms] (torch {best_t}T)", f"best {lb:.0f} / median {lm:.0f}", f"best {tb:.0f} / median {tm:.0f}",
    f"{lm / tm:.2f} (best {lb / tb:.2f})", "<= 0.80")
row("train peak RSS [MB] (process)", f"{max(r['peakRssMB'] for r in lt):.0f} (base {lt[0]['baseRssMB']:.0f})",
    f"{max(r['peakRssMB'] for r in tt[best_t]):.0f} (base {tt[best_t][0]['baseRssMB']:.0f})",
    f"{max(r['peakRssMB'] for r in lt) / max(r['peakRssMB'] for r in tt[best_t]):.2f}", "<= 1.00")
row("train loss first -> last (same batch)", f"{lt[0]['lossFirst']:.3f} -> {lt[0]['lossLast']:.3f}",
    f"{tt[best_t][0]['lossFirst']:.3f} -> {tt[best_t][0]['lossLast']:.3f}", "", "")

lg = runs("loom", "generate")
tg = {t: runs(f"torch{t}", "generate") for t in (1, 2)}
best_g = max(tg, key=lambda t: med(tg[t], "tokensPerSec"))
for t in (1, 2):
    row(f"torch generate, {t} thread(s) [tok/s]", "", f"best {max(r['tokensPerSecMax'] for r in tg[t]):.0f} / median {med(tg[t], 'tokensPerSec'):.0f}", "", "")
lm, tm = med(lg, "tokensPerSec"), med(tg[best_g], "tokensPerSec")
lb, tb = max(r["tokensPerSecMax"] for r in lg), max(r["tokensPerSecMax"] for r in tg[best_g])
row(f"generate [tok/s] (torch {best_g}T)", f"best {lb:.0f} / median {lm:.0f}",
    f"best {tb:.0f} / median {tm:.0f}", f"{lm / tm:.2f} (best {lb / tb:.2f})", ">= 3.00")
row("prefill [ms]", f"{med(lg, 'prefillMs'):.1f}", f"{med(tg[best_g], 'prefillMs'):.1f}",
    f"{med(lg, 'prefillMs') / med(tg[best_g], 'prefillMs'):.2f}", "")

lgm = load("loom-gemm.json")
if lgm:
    tgm = {t: load(f"torch{t}-gemm.json") for t in (1, 2)}
    worst = {}
    for t in ("1", "2"):
        tot_l = tot_t = 0.0
        for i, s in enumerate(lgm["shapes"]):
            g_l, g_t = s["gflops"][t], tgm[int(t)]["shapes"][i]["gflops"]
            f = 2 * s["m"] * s["n"] * s["k"] * s["calls"]
            tot_l += f / g_l; tot_t += f / g_t
            worst[t] = min(worst.get(t, 9e9), g_l / g_t)
            row(f"gemm {s['m']}x{s['k']}x{s['n']}{' tA' if s['transA'] else ''}{' tB' if s['transB'] else ''}{' +C' if s['accumulate'] else ''} x{s['calls']}, {t}T [GFLOP/s]",
                f"{g_l:.0f}", f"{g_t:.0f}", f"{g_l / g_t:.2f}", ">= 0.70")
        total = sum(2 * s["m"] * s["n"] * s["k"] * s["calls"] for s in lgm["shapes"])
        row(f"gemm, all shapes of a step, {t}T [GFLOP/s, flop-weighted]", f"{total / tot_l:.0f}",
            f"{total / tot_t:.0f}", f"{tot_t / tot_l:.2f} (worst shape {worst[t]:.2f})", ">= 0.70")
        row(f"GEMM-only step lower bound, {t}T [ms]", f"{tot_l / 1e6:.0f}", f"{tot_t / 1e6:.0f}", "", "")

w = [max(len(str(r[i])) for r in rows + [("metric", "loom", "torch", "loom/torch", "target")]) for i in range(5)]
fmt = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
print()
print(fmt(("metric", "loom", "torch", "loom/torch", "target")))
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print(fmt(r))
print(f"\nloom: {lt[0]['backend']}/{lt[0].get('isa', '')} {lt[0]['threads']} thread(s); torch: {tt[best_t][0]['backend']}, "
      f"BLAS {tt[best_t][0]['threads'].get('blas')}, coretype {tt[best_t][0]['threads']['coretype']}; rounds {rounds}")
for f in ("uptime-before.txt", "uptime-after.txt"):
    print(f.split(".")[0] + ":", open(os.path.join(out, f)).read().strip())
EOF
