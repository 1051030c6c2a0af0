#!/usr/bin/env bash
# Benchmark: `plan validate` as a whole process (what a pre-commit hook pays on every
# commit) beside check-jsonschema, the usual pre-commit schema validator, on the same plan
# and the same schema. Prints both medians and the ratio.
#
#   benches/validate.sh [PLAN]        # default: plans/lawsker.yaml
#
# Needs hyperfine; installs check-jsonschema with pip when it is missing; builds the release
# binary when it is missing (cargo build --release). Targets: plan < 5 ms median, and at
# least 20x faster than check-jsonschema.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAN_FILE="${1:-plans/lawsker.yaml}"
RUNS="${RUNS:-100}"
BIN=target/release/plan

command -v hyperfine >/dev/null || { echo "hyperfine is required (https://github.com/sharkdp/hyperfine)" >&2; exit 2; }
if ! command -v check-jsonschema >/dev/null; then
  python3 -m pip install --quiet check-jsonschema >&2
fi
[ -x "$BIN" ] || cargo build --release >&2

# Both must accept the plan, or the comparison means nothing.
"$BIN" validate "$PLAN_FILE"
check-jsonschema --schemafile schemas/plan.schema.json "$PLAN_FILE" >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
hyperfine -N --warmup 10 --runs "$RUNS" --export-json "$out/plan.json" \
  "$BIN validate $PLAN_FILE" >&2
hyperfine --warmup 3 --runs "$(( RUNS / 10 > 10 ? RUNS / 10 : 10 ))" --export-json "$out/cj.json" \
  "check-jsonschema --schemafile schemas/plan.schema.json $PLAN_FILE" >&2

python3 - "$out/plan.json" "$out/cj.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))["results"][0]["median"]
cj = json.load(open(sys.argv[2]))["results"][0]["median"]
print(f"plan validate     median {plan * 1000:8.2f} ms  (target < 5 ms: {'ok' if plan < 0.005 else 'MISSED'})")
print(f"check-jsonschema  median {cj * 1000:8.2f} ms")
print(f"ratio             {cj / plan:8.1f}x faster  (target >= 20x: {'ok' if cj / plan >= 20 else 'MISSED'})")
PY
