#!/usr/bin/env bash
# Benchmark of `plan simulate` (issue 4, "Speed"): the default Monte Carlo run of the Lawsker
# plan (7 built-in scenarios x 2000 trials) at 1 and 2 threads: whole-process wall time and
# CPU time (medians of several runs), trials/s and evaluation steps/s, and peak memory at
# 2,000 and 20,000 trials to show it does not grow with the trial count.
#
#   benches/simulate.sh [PLAN] [RUNS]        (defaults: plans/lawsker.yaml, 5)
#   BASELINE=/path/to/old/plan benches/simulate.sh   also times an older binary, same runs
#   BASELINE_PLAN=old.yaml                            the plan the older binary reads (default PLAN)
#
# Runs are interleaved (each round runs every command once), so a burst of load on a shared
# machine hits every command alike; with a baseline, the median of the per-round ratios is
# printed too. Needs python3 and GNU time (/usr/bin/time).
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
read -r TRIALS STEPS _ < <(tail -1 "$TMP/work")

echo "== time ($RUNS interleaved rounds)"
python3 - "$BIN" "$PLAN" "$RUNS" "$TRIALS" "$STEPS" "${BASELINE:-}" "${BASELINE_PLAN:-$PLAN}" <<'PY'
import resource, statistics, subprocess, sys, time
bin_, plan, runs, trials, steps, baseline, baseline_plan = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
cmds = [(f"jobs={j}", [bin_, "simulate", plan, "--jobs", str(j)]) for j in (1, 2)]
if baseline:
    cmds += [(f"baseline jobs={j}", [baseline, "simulate", baseline_plan, "--jobs", str(j)]) for j in (1, 2)]
wall = {n: [] for n, _ in cmds}
cpu = {n: [] for n, _ in cmds}
for _ in range(runs):
    for name, argv in cmds:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        wall[name].append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[name].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
print(f'{"command":<18}{"wall s":>8}{"cpu s":>8}{"trials/s":>10}{"steps/s":>10}{"steps/cpu-s":>13}')
for name, _ in cmds:
    w, c = statistics.median(wall[name]), statistics.median(cpu[name])
    print(f'{name:<18}{w:>8.2f}{c:>8.2f}{trials / w:>10.0f}{steps / w:>10.3g}{steps / c:>13.3g}')
if baseline:
    print("(the baseline's steps/s use this build's step count; its own may differ slightly)")
    for j in (1, 2):
        ratios = [a / b for a, b in zip(cpu[f"jobs={j}"], cpu[f"baseline jobs={j}"])]
        print(f"jobs={j}: CPU time / baseline's, median of per-round ratios: {statistics.median(ratios):.3f}")
PY

echo "== peak memory (GNU time)"
for n in 2000 20000; do
  # The plan's own scenarios: the built-in ones cannot model a plan's custom metrics.
  /usr/bin/time -v "$BIN" simulate "$PLAN" --trials "$n" > /dev/null 2> "$TMP/time"
  printf 'trials %6d: max RSS %s kB, %s s elapsed\n' "$n" \
    "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time")" \
    "$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$TMP/time")"
done
