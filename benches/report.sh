#!/usr/bin/env bash
# Benchmark of `--report` (issue 19, "Reports people would rather look at"): the default
# `plan simulate` of the Lawsker plan with and without `--report FILE.html`, whole-process
# wall and CPU time (medians of interleaved rounds, so that a burst of load on a shared
# machine hits both alike), the median of the per-round CPU ratios, and the page's size;
# then the page's own cost, where the simulation is all but gone (`--trials 5`, 3x the
# rounds): what `--report` adds in milliseconds. Target: the report adds under 5%.
#
#   benches/report.sh [PLAN] [RUNS]        (defaults: plans/lawsker.yaml, 9)
#
# Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAN=${1:-plans/lawsker.yaml}
RUNS=${2:-9}
cargo build --release --quiet
BIN=target/release/plan
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

python3 - "$BIN" "$PLAN" "$RUNS" "$TMP" <<'PY'
import os, resource, statistics, subprocess, sys, time
bin_, plan, runs, tmp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
page = os.path.join(tmp, "report.html")

def rounds(extra, runs):
    cmds = [
        ("without --report", [bin_, "simulate", plan] + extra),
        ("with --report", [bin_, "simulate", plan] + extra + ["--report", page]),
    ]
    wall = {n: [] for n, _ in cmds}
    cpu = {n: [] for n, _ in cmds}
    for r in range(runs):
        # Alternate which goes first, so that neither always runs on a warmer machine.
        order = cmds if r % 2 == 0 else cmds[::-1]
        for name, argv in order:
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            wall[name].append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    print(f"{runs} interleaved rounds of `plan simulate {' '.join([plan] + extra)}`")
    print(f'{"command":<18}{"wall s":>9}{"cpu s":>9}')
    for name, _ in cmds:
        print(f"{name:<18}{statistics.median(wall[name]):>9.3f}{statistics.median(cpu[name]):>9.3f}")
    a, b = cmds[0][0], cmds[1][0]
    w = statistics.median(wall[b]) / statistics.median(wall[a]) - 1
    c = statistics.median(cpu[b]) / statistics.median(cpu[a]) - 1
    ratios = [y / x for x, y in zip(cpu[a], cpu[b])]
    dw = (statistics.median(wall[b]) - statistics.median(wall[a])) * 1000
    dc = (statistics.median(cpu[b]) - statistics.median(cpu[a])) * 1000
    print(f"the report adds {w * 100:+.1f}% wall ({dw:+.1f} ms), {c * 100:+.1f}% CPU ({dc:+.1f} ms) "
          f"(medians); median of per-round CPU ratios {statistics.median(ratios):.3f}")
    print(f"report: {os.path.getsize(page)} bytes")

rounds([], runs)
rounds(["--trials", "5"], 3 * runs)
PY
