#!/usr/bin/env bash
# Training speed against threads: `loom train --workers W` on a built-in task for each W, in
# interleaved rounds (the machine is shared and noisy), timed from the step timestamps of
# metrics.jsonl between step FROM and the last (start-up, the buffer pool's first fill and the
# schedule's re-fit fall before FROM). Prints steps/s and the speed-up over one thread.
#
#   bench/data-parallel.sh                  reachability, 1 and 2 threads, 300 steps, 2 rounds
#   TASK=parity WORKERS="1 2 4" STEPS=400 ROUNDS=3 bench/data-parallel.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TASK=${TASK:-reachability}
WORKERS=${WORKERS:-1 2}
STEPS=${STEPS:-300}
FROM=${FROM:-50}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$(mktemp -d /tmp/loom-dp.XXXXXX)}

# steps/s between step $FROM and the last step of a run's metrics.jsonl
rate() {
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
    const steps = lines.filter((l) => l.includes("\"type\":\"step\"")).map((l) => JSON.parse(l));
    const from = steps.find((s) => s.step === Number(process.argv[2]));
    const last = steps[steps.length - 1];
    console.log(((last.step - from.step) / (last.seconds - from.seconds)).toFixed(3));
  ' "$1" "$FROM"
}

declare -A total
for round in $(seq 1 "$ROUNDS"); do
  for w in $WORKERS; do
    dir=$OUT/r$round-w$w
    node bin/loom.js train --task "$TASK" --max-steps "$STEPS" --workers "$w" --out "$dir" \
      --eval-every 1000000 --checkpoint-every 10h --quiet
    r=$(rate "$dir/metrics.jsonl")
    echo "round $round, $w thread(s): $r steps/s"
    total[$w]=$(node -e "console.log(${total[$w]:-0} + $r)")
  done
done
base=$(node -e "console.log(${total[${WORKERS%% *}]} / $ROUNDS)")
for w in $WORKERS; do
  mean=$(node -e "console.log((${total[$w]} / $ROUNDS).toFixed(3))")
  echo "$TASK, $w thread(s): $mean steps/s, $(node -e "console.log(($mean / $base).toFixed(2))")x"
done
