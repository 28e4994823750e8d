#!/usr/bin/env bash
# Evaluation speed against threads: `loom eval --workers W` on a built-in task's test split for
# each W, in interleaved rounds (the machine is shared and noisy), timed wall clock as a user
# sees it (process start and the workers' start-up included). Give a trained MODEL: decoding
# stops at a row's first wrong token, so an untrained one (trained here for 30 steps when MODEL
# is unset) times little but process start. Prints seconds, the speed-up over the first W, and
# whether every W gave the same results.
#
#   MODEL=runs/parity TASK=parity COUNT=40 bench/parallel-eval.sh
#   TASK=parity WORKERS="1 2 4" ROUNDS=3 bench/parallel-eval.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TASK=${TASK:-reachability}
WORKERS=${WORKERS:-1 2}
ROUNDS=${ROUNDS:-2}
COUNT=${COUNT:-16}
STEPS=${STEPS:-1,2,4,8,16,32,64}
OUT=${OUT:-$(mktemp -d /tmp/loom-eval.XXXXXX)}

MODEL=${MODEL:-}
if [ -z "$MODEL" ]; then
  MODEL=$OUT/model
  node bin/loom.js train --task "$TASK" --max-steps 30 --out "$MODEL" --eval-every 1000000 \
    --quiet >/dev/null
fi
declare -A total
for round in $(seq 1 "$ROUNDS"); do
  for w in $WORKERS; do
    start=$(date +%s.%N)
    node bin/loom.js eval --model "$MODEL" --task "$TASK" --count "$COUNT" --steps "$STEPS" \
      --workers "$w" --quiet --json "$OUT/r$round-w$w.json" >/dev/null
    secs=$(node -e "console.log(($(date +%s.%N) - $start).toFixed(2))")
    echo "round $round, $w thread(s): $secs s"
    total[$w]=$(node -e "console.log(${total[$w]:-0} + $secs)")
  done
done
first=${WORKERS%% *}
base=$(node -e "console.log(${total[$first]} / $ROUNDS)")
for w in $WORKERS; do
  mean=$(node -e "console.log((${total[$w]} / $ROUNDS).toFixed(2))")
  same=$(cmp -s "$OUT/r1-w$first.json" "$OUT/r1-w$w.json" && echo yes || echo NO)
  echo "$TASK, $w thread(s): $mean s, $(node -e "console.log(($base / $mean).toFixed(2))")x, same results as $first: $same"
done
