#!/usr/bin/env bash
# The run command: brings up the local demo cluster of cluster-configs/demo.yaml and runs it end
# to end. Installs what is missing (scripts/setup.sh), builds a release binary, then:
#   1. validates the cluster config and prints its GPUs;
#   2. starts one process per rack shard address on loopback;
#   3. exchanges protobuf-c frames over NNG with every shard and prints round-trip times;
#   4. throws seeded garbage at one shard and shows that it still answers;
#   5. replays a Gavel trace in the simulator under three Gavel policies, side by side;
# and stops everything it started. Usage: scripts/demo.sh [CONFIG]
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-cluster-configs/demo.yaml}"

scripts/setup.sh
echo "== building (release)"
swift build -c release --product bourse 2>&1 | tail -1
bourse=.build/release/bourse

echo "== 1. cluster config"
"$bourse" config check "$config"

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/bourse-demo.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== 2. one process per rack shard (logs in $run_dir)"
shards=$("$bourse" config check --json "$config" | /usr/bin/python3 -c '
import json, sys
for rack in json.load(sys.stdin)[0]["summary"]["rack_details"]:
    print(rack["id"], rack["shard"])')
while read -r rack address; do
  "$bourse" wire serve --listen "$address" --id "shard-$rack" >"$run_dir/shard-$rack.out" 2>"$run_dir/shard-$rack.log" &
  pids+=($!)
done <<<"$shards"
for _ in $(seq 1 100); do
  ready=$(cat "$run_dir"/shard-*.out 2>/dev/null | grep -c "serving on" || true)
  [ "$ready" -ge "$(wc -l <<<"$shards")" ] && break
  sleep 0.1
done
cat "$run_dir"/shard-*.out

echo "== 3. round trips to every shard (Ping -> Ack, protobuf-c over NNG)"
"$bourse" wire ping --config "$config" --count 200

first=$(head -1 <<<"$shards" | cut -d' ' -f2)
echo "== 4. 1000 seeded garbage frames to $first"
"$bourse" wire fuzz "$first" --frames 1000 --seed 7
echo "   (its log: $(grep -c 'dropped malformed frame' "$run_dir"/shard-r0.log || true) malformed frames counted and dropped)"

echo "== 5. simulator: Gavel's dev-80-multi trace on the 4:4:4 Gavel cluster"
echo "   with consolidated throughputs, as Gavel's own simulator; what Gavel printed for this trace:"
awk -F'\t' '$1=="dev-80-multi.trace" && ($3=="fifo_perf" || $3=="max_min_fairness_perf" || $3=="finish_time_fairness_perf" || $3=="max_sum_throughput_perf") {printf "     %-28s avg JCT %6.2f h  makespan %6.2f h\n", $3, $4/3600, $5/3600}' \
  data/traces/gavel-reference-results.tsv
"$bourse" sim --trace data/traces/dev-80-multi.trace --cluster cluster-configs/gavel-4-4-4.yaml \
  --throughput-mode consolidated --compare fifo,gavel-las,gavel-ftf,gavel-maxsum

echo "== done; stopping the shard processes"
