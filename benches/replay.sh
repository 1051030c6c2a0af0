#!/usr/bin/env bash
# Replay speed: one week of recorded raw series (lawsker's canary scraped every 30s:
# request counters, latency histogram buckets, and the raw counters of its two custom
# ratio metrics, conversion_rate and bug_report_rate, on both tracks, which the PromQL
# engine evaluates) replayed by `plan simulate --trace`,
# beside `promtool test rules` evaluating the same rules file (phase alpha) over the same
# samples for the same 168 hours (the replay goes on past its verdict, promotion at 144h,
# to the last sample).
#
#   benches/replay.sh            # prints both times and the ratio (target: replay >= 100x faster)
#
# Needs python3 (to write the trace) and promtool.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import sys, os
work = sys.argv[1]
step, n = 30, 7 * 24 * 120          # 30s scrapes for a week
les = ["0.1", "0.5", "1", "2.5", "5", "10", "+Inf"]
cum = [60, 90, 95, 98, 100, 100, 100]   # per-scrape cumulative bucket increments
custom = [("business_flow_started_total", ("", 10)), ("business_flow_completed_total", ("", 5)),
          ("feedback_submissions_total", (";type=bug", 1)), ("feedback_submissions_total", (";type=feature", 9))]
with open(os.path.join(work, "week.csv"), "w") as f:
    f.write("timestamp,series,labels,value\n")
    base = 1714521600
    for i in range(n + 1):
        t = base + i * step
        f.write(f"{t},http_requests_total,service=backend;track=canary;code=200,{i*149}\n")
        f.write(f"{t},http_requests_total,service=backend;track=canary;code=500,{i}\n")
        for le, c in zip(les, cum):
            f.write(f"{t},http_request_duration_seconds_bucket,service=backend;track=canary;le={le},{i*c}\n")
        for track, k in (("canary", 1), ("stable", 19)):
            for name, inc in custom:
                f.write(f"{t},{name},service=backend;track={track}{inc[0]},{i*inc[1]*k}\n")
series = [('http_requests_total{service="backend",track="canary",code="200"}', f"0+149x{n}"),
          ('http_requests_total{service="backend",track="canary",code="500"}', f"0+1x{n}")]
series += [(f'http_request_duration_seconds_bucket{{service="backend",track="canary",le="{le}"}}', f"0+{c}x{n}") for le, c in zip(les, cum)]
for track, k in (("canary", 1), ("stable", 19)):
    for name, (extra, inc) in custom:
        labels = f'service="backend",track="{track}"' + (f',type="{extra.split("=")[1]}"' if extra else "")
        series.append((f"{name}{{{labels}}}", f"0+{inc*k}x{n}"))
with open(os.path.join(work, "week.test.yml"), "w") as f:
    f.write("rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n- interval: 30s\n  input_series:\n")
    for s, v in series:
        f.write(f"  - series: '{s}'\n    values: '{v}'\n")
    f.write("  alert_rule_test:\n  - {eval_time: 168h, alertname: CanaryRollbackErrorRate, exp_alerts: []}\n")
PY

cargo build --release --quiet
./target/release/plan render plans/lawsker.yaml --out "$work/out" 2>/dev/null
cp "$work/out/lawsker/prometheus/alpha.rules.yml" "$work/rules.yml"
echo "trace: $(wc -l < "$work/week.csv") rows, $(du -h "$work/week.csv" | cut -f1)"

now() { date +%s.%N; }
t0=$(now)
./target/release/plan simulate plans/lawsker.yaml --trace "$work/week.csv" > "$work/replay.txt" 2>&1
t1=$(now)
replay=$(echo "$t1 - $t0" | bc -l)
grep -m1 Verdict "$work/replay.txt" || true

t0=$(now)
promtool test rules "$work/week.test.yml" > /dev/null 2>&1 || true   # no-data alerts fire: only the time matters
t1=$(now)
prom=$(echo "$t1 - $t0" | bc -l)
printf 'replay: %.3f s   promtool test rules: %.2f s   ratio: %.0fx\n' "$replay" "$prom" "$(echo "$prom / $replay" | bc -l)"
