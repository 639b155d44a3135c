#!/usr/bin/env bash
# The run command: brings up the local demo cluster of cluster-configs/demo.yaml (a gateway, one
# scheduler shard and one agent per rack, as separate processes on loopback), runs jobs on it end
# to end, and compares policies in the simulator. Installs what is missing (scripts/setup.sh) and
# builds a release binary first. Usage: scripts/demo.sh [CONFIG]
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-cluster-configs/demo.yaml}"

scripts/setup.sh
echo "== building (release)"
swift build -c release --product bourse 2>&1 | tail -1
bourse=.build/release/bourse

echo "== 1. the cluster"
"$bourse" config check "$config"

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/bourse-demo.XXXXXX")"
cleanup() { "$bourse" down --run-dir "$run_dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "== 2. bourse up: gateway, one shard and one agent per rack (policy bourse, clock x600)"
"$bourse" up "$config" --policy bourse --speedup 600 --run-dir "$run_dir"
"$bourse" members --run-dir "$run_dir"

echo "== 3. submitting jobs through the gateway"
while IFS=: read -r type steps workers; do
  "$bourse" submit --config "$config" --job-type "$type" --steps "$steps" --workers "$workers"
done <<'JOBS'
ResNet-18 (batch size 32):60000:1
ResNet-50 (batch size 64):20000:4
Transformer (batch size 64):40000:2
LM (batch size 20):30000:1
A3C:20000:1
CycleGAN:15000:1
Recommendation (batch size 2048):30000:1
ResNet-18 (batch size 128):40000:1
JOBS

echo "== 4. waiting for every job to finish (cluster time runs 600x faster than the wall clock)"
for _ in $(seq 1 300); do
  left=$("$bourse" jobs --config "$config" --state pending,running,restarting --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$left" -eq 0 ] && break
  sleep 1
done
"$bourse" jobs --config "$config"
"$bourse" nodes --run-dir "$run_dir"
echo "== 5. 300 seeded garbage frames to a shard: counted, dropped, the shard keeps answering"
shard=$("$bourse" config check --json "$config" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["summary"]["rack_details"][0]["shard"])')
"$bourse" wire fuzz "$shard" --frames 300 --seed 7
"$bourse" down --run-dir "$run_dir"

echo "== 6. simulator: Gavel's dev-80-multi trace on the 4:4:4 Gavel cluster"
echo "   Gavel's policies with consolidated throughputs, as Gavel's own simulator; what it printed:"
awk -F'\t' '$1=="dev-80-multi.trace" && ($3=="fifo_perf" || $3=="max_min_fairness_perf" || $3=="finish_time_fairness_perf" || $3=="max_sum_throughput_perf") {printf "     %-28s avg JCT %6.2f h  makespan %6.2f h\n", $3, $4/3600, $5/3600}' \
  data/traces/gavel-reference-results.tsv
"$bourse" sim --trace data/traces/dev-80-multi.trace --cluster cluster-configs/gavel-4-4-4.yaml \
  --throughput-mode consolidated --compare fifo,gavel-las,gavel-ftf,gavel-maxsum
echo "   Bourse's policy beside the best Gavel ones (every policy pays a 30 s checkpoint-restart):"
"$bourse" sim --trace data/traces/dev-80-multi.trace --cluster cluster-configs/gavel-4-4-4.yaml \
  --throughput-mode consolidated --compare gavel-las,gavel-maxsum,bourse-fixed,bourse
