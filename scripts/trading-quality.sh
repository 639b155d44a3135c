#!/usr/bin/env bash
# Quality of sharding (issue #6): avg JCT and per-round objective of `bourse sim --shards K`
# against the 1-shard (central) run, with and without trading, on the dev traces; then how
# trading's messages and phases grow with K. Usage:
#   scripts/trading-quality.sh [BOURSE_BINARY] [OUT_DIR]
# Defaults: .build/release/bourse (build it with `swift build -c release`), /tmp/bourse-trading.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release/bourse}
OUT=${2:-/tmp/bourse-trading}
mkdir -p "$OUT"
runs=(
  "dev-80-multi gavel-4-4-4"
  "dev-80-single gavel-4-4-4"
  "dev-120-static gavel-8-8-8"
  "dev-300-multi gavel-12-12-12"
)
field() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); t=d.get('trading',{}); print(d['$1'] if '$1' in d else t.get('$1','-'))" "$2"; }
printf '%-15s %-6s %-4s %12s %8s %9s %9s %8s\n' trace trading K avg_jct_s vs_1 objective msgs/rnd phases
for run in "${runs[@]}"; do
  set -- $run
  trace=data/traces/$1.trace; cluster=cluster-configs/$2.yaml
  "$BIN" sim --trace "$trace" --cluster "$cluster" --quiet --json "$OUT/$1-central.json" >/dev/null
  base=$(field avg_jct_s "$OUT/$1-central.json")
  printf '%-15s %-6s %-4s %12.0f %8s %9s %9s %8s\n' "$1" - 1 "$base" 1.000 1.000 0 -
  for mode in on off; do
    for k in 2 4 8; do
      flag=(); [ "$mode" = off ] && flag=(--no-trading)
      json="$OUT/$1-k$k-$mode.json"
      if "$BIN" sim --trace "$trace" --cluster "$cluster" --shards "$k" "${flag[@]}" --quiet --json "$json" >/dev/null 2>"$OUT/$1-k$k-$mode.err"; then
        jct=$(field avg_jct_s "$json")
        printf '%-15s %-6s %-4s %12.0f %8.3f %9.3f %9.1f %8.2f\n' "$1" "$mode" "$k" "$jct" \
          "$(/usr/bin/python3 -c "print($jct/$base)")" "$(field objective_ratio_mean "$json")" \
          "$(field messages_per_round "$json")" "$(field phases_per_round_mean "$json")"
      else
        printf '%-15s %-6s %-4s %s\n' "$1" "$mode" "$k" "did not finish: $(tail -1 "$OUT/$1-k$k-$mode.err" | cut -c1-90)"
      fi
    done
  done
done
echo
echo "Convergence on dev-300-multi, gavel-36-36-36 (108 GPUs):"
printf '%-4s %12s %9s %10s %10s %8s %8s\n' K avg_jct_s objective msgs/rnd msgs/shard phases max
for k in 1 2 4 8 16 32; do
  json="$OUT/conv-k$k.json"
  "$BIN" sim --trace data/traces/dev-300-multi.trace --cluster cluster-configs/gavel-36-36-36.yaml --shards "$k" --quiet --json "$json" >/dev/null
  m=$(field messages_per_round "$json")
  printf '%-4s %12.0f %9.3f %10.1f %10.2f %8.2f %8s\n' "$k" "$(field avg_jct_s "$json")" "$(field objective_ratio_mean "$json")" \
    "$m" "$(/usr/bin/python3 -c "print($m/$k)")" "$(field phases_per_round_mean "$json")" "$(field phases_per_round_max "$json")"
done
