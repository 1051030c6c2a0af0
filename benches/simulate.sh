#!/usr/bin/env bash
# Benchmark of `plan simulate` (issue 4, "Speed"): the default Monte Carlo run of the Lawsker
# plan (7 built-in scenarios x 2000 trials) at 1 and 2 threads, whole-process wall time
# (hyperfine, median of several runs), CPU time, trials/s and rule evaluations/s, and peak
# memory at 2,000 and 20,000 trials to show it does not grow with the trial count.
#
#   benches/simulate.sh [PLAN] [RUNS]        (defaults: plans/lawsker.yaml, 5)
#   BASELINE=/path/to/old/plan benches/simulate.sh   also times an older binary, same run
#
# Needs hyperfine, python3 and GNU time (/usr/bin/time). On a shared machine, compare CPU
# time (user+sys) as well as wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAN=${1:-plans/lawsker.yaml}
RUNS=${2:-5}
cargo build --release --quiet
BIN=target/release/plan
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "== work per run (from the JSON report)"
"$BIN" simulate "$PLAN" --format json > "$TMP/report.json"
python3 - "$TMP/report.json" <<'PY' | tee "$TMP/work"
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
print(f'{t["trials"]} trials, {t["evaluation_steps"]} evaluation steps, {t["rule_evaluations"]} rule evaluations')
print(t["trials"], t["evaluation_steps"], t["rule_evaluations"])
PY
read -r TRIALS STEPS EVALS < <(tail -1 "$TMP/work")

echo "== wall time (hyperfine, $RUNS runs)"
CMDS=(-n "jobs=1" "$BIN simulate $PLAN --jobs 1" -n "jobs=2" "$BIN simulate $PLAN --jobs 2")
if [[ -n "${BASELINE:-}" ]]; then
  CMDS+=(-n "baseline jobs=2" "$BASELINE simulate $PLAN --jobs 2")
fi
hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$TMP/h.json" --output=null "${CMDS[@]}"
python3 - "$TMP/h.json" "$TRIALS" "$STEPS" "$EVALS" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
trials, steps, evals = map(int, sys.argv[2:5])
print(f'{"command":<18}{"median s":>9}{"cpu s":>8}{"trials/s":>10}{"steps/s":>12}{"evals/s":>13}{"evals/s/cpu-s":>15}')
for r in h["results"]:
    med = r["median"]
    cpu = (r["user"] + r["system"])
    print(f'{r["command"]:<18}{med:>9.2f}{cpu:>8.2f}{trials/med:>10.0f}{steps/med:>12.3g}{evals/med:>13.3g}{evals/cpu:>15.3g}')
PY

echo "== peak memory (GNU time)"
for n in 2000 20000; do
  /usr/bin/time -v "$BIN" simulate "$PLAN" --trials "$n" --scenarios simulations/default.yaml > /dev/null 2> "$TMP/time"
  printf 'trials %6d: max RSS %s kB, %s s elapsed\n' "$n" \
    "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time")" \
    "$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$TMP/time")"
done
