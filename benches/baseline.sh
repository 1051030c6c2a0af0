#!/usr/bin/env bash
# Benchmark of `plan simulate --baseline` (issue 17): the Lawsker plan on a one-week,
# 15-second recording (`cargo run --example recording`) beside the synthetic run of the same
# plan and scenarios (simulations/lawsker-baseline.yaml): whole-process CPU time per evaluation step
# (medians of interleaved rounds; target: the recorded run at most 2x the synthetic one's),
# and peak memory of the recorded run at two trial counts (target: flat).
#
# Lawsker's recorded trials are sparse ones (drawn only at the scrapes a window starts or
# ends on), its custom queries' business counters too (completed flows nested in started
# ones, a broken-flow fault moving their share). The same plan with its gates on the
# request metrics alone (error rate, p95, availability) is measured beside it as
# `requests`, and the plan without its two custom metrics (gates on CPU, memory, DB
# connections and Redis too) as `own`.
#
#   benches/baseline.sh [RUNS] [TRIALS]      (defaults: 3 rounds, 200 trials per scenario)
#
# Needs python3 and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
TRIALS=${2:-200}
PLAN=plans/lawsker.yaml
SCENARIOS=simulations/lawsker-baseline.yaml
cargo build --release --quiet --bin plan --example recording
BIN=target/release/plan
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
target/release/examples/recording 7 15 1 > "$TMP/week.csv"
# Lawsker with its gates on the request metrics alone (its scenario file beside it).
python3 - "$PLAN" "$TMP/requests.yaml" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
keep = ("error_rate", "response_time_p95", "availability")
gates = re.search(r"^gates:\n((?:  .*\n)+)", text, re.M)
lines = [l for l in gates.group(1).splitlines(True) if l.strip().split(":")[0] in keep]
text = text[: gates.start(1)] + "".join(lines) + text[gates.end(1) :]
here = os.path.dirname(os.path.abspath(sys.argv[1]))
text = text.replace("scenarios: ../", "scenarios: " + os.path.dirname(here) + "/")
open(sys.argv[2], "w").write(text)
PY
# Lawsker without its custom metrics (and their scenario file's series and faults).
python3 - "$PLAN" "$SCENARIOS" "$TMP/own.yaml" "$TMP/own-scenarios.yaml" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
text = re.sub(r"^metrics:\n(?:(?:  |    ).*\n)+", "", text, flags=re.M)
text = re.sub(r"^  (bug_report_rate|conversion_rate): .*\n", "", text, flags=re.M)
here = os.path.dirname(os.path.abspath(sys.argv[1]))
text = text.replace("scenarios: ../", "scenarios: " + os.path.dirname(here) + "/")
open(sys.argv[3], "w").write(text)
sc = open(sys.argv[2]).read()
sc = re.sub(r"^  series:\n(?:    .*\n)+", "", sc, flags=re.M)
sc = re.sub(r"^  - name: broken-flow\n(?:    .*\n)+", "", sc, flags=re.M)
open(sys.argv[4], "w").write(sc)
PY
echo "== recording: $(wc -l < "$TMP/week.csv") samples, $(du -h "$TMP/week.csv" | cut -f1)"

python3 - "$BIN" "$PLAN" "$SCENARIOS" "$TMP/week.csv" "$RUNS" "$TRIALS" "$TMP/requests.yaml" \
  "$TMP/own.yaml" "$TMP/own-scenarios.yaml" <<'PY'
import json, resource, statistics, subprocess, sys
bin_, plan, sc, rec = sys.argv[1:5]
runs, trials, requests, own, own_sc = int(sys.argv[5]), *sys.argv[6:10]
run = lambda p, s=sc: [bin_, "simulate", p, "--scenarios", s, "--trials", trials, "--jobs", "1"]
base, req, own = run(plan), run(requests), run(own, own_sc)
cmds = {"synthetic": base, "recorded": base + ["--baseline", rec],
        "req-synth": req, "req-recorded": req + ["--baseline", rec],
        "own-synth": own, "own-recorded": own + ["--baseline", rec]}
steps = {}
for name, argv in cmds.items():
    out = subprocess.run(argv + ["--format", "json"], capture_output=True, check=True).stdout
    steps[name] = json.loads(out)["totals"]["evaluation_steps"]
cpu = {n: [] for n in cmds}
for _ in range(runs):
    for name, argv in cmds.items():
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[name].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
print(f'{"run":<13}{"steps":>12}{"cpu s":>9}{"ns/step":>10}')
per = {}
for name in cmds:
    c = statistics.median(cpu[name])
    per[name] = c / steps[name] * 1e9
    print(f'{name:<13}{steps[name]:>12}{c:>9.2f}{per[name]:>10.0f}')
print(f'recorded / synthetic CPU per evaluation step: {per["recorded"] / per["synthetic"]:.1f}x (target: at most 2x)')
print(f'requests only (sparse trials): {per["req-recorded"] / per["req-synth"]:.1f}x')
print(f'without custom metrics (sparse trials): {per["own-recorded"] / per["own-synth"]:.1f}x')
PY

echo "== peak memory of the recorded run (GNU time)"
for n in 50 500; do
  /usr/bin/time -v "$BIN" simulate "$PLAN" --scenarios "$SCENARIOS" --baseline "$TMP/week.csv" \
    --trials "$n" --jobs 2 > /dev/null 2> "$TMP/time"
  printf 'trials %4d: max RSS %s kB\n' "$n" \
    "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time")"
done
