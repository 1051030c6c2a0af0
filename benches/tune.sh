#!/usr/bin/env bash
# Benchmark of `plan tune` (issue 18, "Speed"), beside `plan simulate` in the same rounds:
#   - one rule swept: Lawsker's `error_rate` at every default setting (13 thresholds x 7
#     `for`s = 91 candidates; every other rule kept as written, no check run), against
#     simulating the plan once with the same trials: the CPU ratio (target: at most 3x);
#   - the default `plan tune plans/lawsker.yaml`: every rollback condition and gate (371
#     candidates), the search, and the check on fresh trials: wall time at 2 threads
#     (target: under 60 s).
# Medians of whole-process runs, interleaved (each round runs every command once), and the
# median of the per-round CPU ratios.
#
#   benches/tune.sh [RUNS]        (default 3)
# Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
cargo build --release --quiet
BIN=target/release/plan
KEEP=(--keep response_time_p95 --keep availability --keep silent_canary --keep gates)
python3 - "$BIN" "$RUNS" "${KEEP[@]}" <<'PY'
import resource, statistics, subprocess, sys, time
bin_, runs, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
plan = "plans/lawsker.yaml"
cmds = [
    ("simulate", [bin_, "simulate", plan, "--jobs", "2"]),
    ("tune error_rate", [bin_, "tune", plan, "--jobs", "2", "--no-check", "--max-false-rollback", "100%", *keep]),
    ("tune (default)", [bin_, "tune", plan, "--jobs", "2"]),
]
wall = {n: [] for n, _ in cmds}
cpu = {n: [] for n, _ in cmds}
for _ in range(runs):
    for name, argv in cmds:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall[name].append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[name].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
print(f'{"command":<18}{"wall s":>8}{"cpu s":>8}')
for name, _ in cmds:
    print(f'{name:<18}{statistics.median(wall[name]):>8.2f}{statistics.median(cpu[name]):>8.2f}')
ratios = [a / b for a, b in zip(cpu["tune error_rate"], cpu["simulate"])]
print(f"one rule's 91 candidates / one simulate, CPU, median of per-round ratios: {statistics.median(ratios):.2f} (target <= 3)")
print(f"default tune wall time, median: {statistics.median(wall['tune (default)']):.1f} s (target < 60 s at 2 threads)")
PY
