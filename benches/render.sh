#!/usr/bin/env bash
# Whole-process benchmark of `plan render plans/lawsker.yaml` (issue 3 target: under 10 ms
# median), beside `plan validate` on the same file and `true` as the process baseline, all
# in one hyperfine run so that they share the machine's noise.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
hyperfine --warmup 5 --runs "${RUNS:-50}" -N --export-json "$out/render.json" \
  "true" \
  "target/release/plan validate plans/lawsker.yaml" \
  "target/release/plan render plans/lawsker.yaml --out $out/gen" \
  "target/release/plan render plans/lawsker.yaml --out $out/gen --check" >&2
python3 - "$out/render.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['median']*1000:8.2f} ms median  {r['command']}")
PY
