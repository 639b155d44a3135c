#!/usr/bin/env bash
# The chaos suite: runs every scenario of cluster-configs/chaos/ with `bourse chaos run`, writes
# each result as JSON to RESULTS_DIR (default run/chaos-results) and prints a summary table.
# Exit 1 when any scenario fails the auditor.
# Usage: scripts/chaos.sh [--swim] [--seed N] [scenario names...]
#   --swim   also run swim-loss (5 % message loss for 5 minutes of wall time; ~7 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
swim=0; seed=""; names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --swim) swim=1 ;;
    --seed) seed="--seed $2"; shift ;;
    *) names+=("$1") ;;
  esac
  shift
done
if [ ${#names[@]} -eq 0 ]; then
  names=(shard-kill gateway-kill agent-kill node-fail partition message-faults combined trading)
  [ $swim -eq 1 ] && names+=(swim-loss)
fi
swift build --product bourse >/dev/null || exit 2
bourse=.build/debug/bourse
results=${RESULTS_DIR:-run/chaos-results}
mkdir -p "$results"
failed=0
for name in "${names[@]}"; do
  echo "== $name"
  # shellcheck disable=SC2086
  $bourse chaos run "cluster-configs/chaos/$name.yaml" --run-dir "run/chaos-$name" --json "$results/$name.json" $seed \
    > "$results/$name.out" 2>&1
  status=$?
  sed -n '/^faults:/,$p' "$results/$name.out"
  [ $status -ne 0 ] && failed=1
done
echo
python3 - "$results" "${names[@]}" <<'PY'
import json, sys, os
d = sys.argv[1]
print(f"{'scenario':15} {'verdict':7} {'jobs':>4} {'faults':>6} {'affected':>8}  recovery (cluster s)  violations")
for n in sys.argv[2:]:
    p = os.path.join(d, n + ".json")
    if not os.path.exists(p):
        print(f"{n:15} {'ERROR':7}"); continue
    r = json.load(open(p))
    faults = r["faults"]
    affected = len({j for f in faults for j in f["jobs_affected"]})
    rec = ", ".join(f"{f['fault']} {f['recovery_cluster_seconds']:.0f}" for f in faults if f["recovery_cluster_seconds"] is not None)
    bad = ", ".join(f"{i['name']} {i['violations']}" for i in r["audit"]["invariants"] if i["verdict"] != "pass")
    print(f"{n:15} {'PASS' if r['passed'] else 'FAIL':7} {r['jobs_acknowledged']:>4} {len(faults):>6} {affected:>8}  {rec or '-'}  {bad or '-'}")
PY
exit $failed
