#!/usr/bin/env bash
# The demo: a rolling upgrade of a whole swarm under load, on this machine. Brings up a fresh
# test bed (a real 3-manager + 2-worker Docker Swarm, one dockerd per network namespace,
# formed by the node bootstrap; moto for SQS and DynamoDB; the Auto Scaling emulator; HAProxy
# as the load balancer), runs a web service of 3 replicas behind the load balancer, sends it
# a steady load, and replaces every node one at a time as a CloudFormation stack update would,
# the lifecycle processor draining each node first. With --compare (the default here) it
# first does the same without the processor, on a fresh test bed, for the comparison.
#
# Shows its progress, then a summary; writes target/bench/rolling-upgrade.json and the
# timeline target/bench/rolling-upgrade.svg. Leaves the upgraded test bed running for you to
# explore; `target/debug/testbed down` removes it. Arguments go to rolling-upgrade
# (`scripts/demo.sh --per-group 1` for a short run, `scripts/demo.sh --no-compare`).
#
# `scripts/demo.sh hard-failures`: the other scenario. Three managers and then a worker are
# lost through EC2 one after another (no hook runs), each replaced by its group, under the
# same load, with the membership sweep and, first, without it; writes
# target/bench/hard-failures.json and target/bench/hard-failures.svg.
#
# `scripts/demo.sh listeners`: every published port reachable through the stack's Network
# Load Balancer. Two services published from the start take a steady load through it while
# five more are published and unpublished, each timed (service created → first answer;
# service removed → listener gone); writes target/bench/listeners.json and
# target/bench/listeners.svg.
#
# `scripts/demo.sh manager-count`: the manager count changed live, 3 → 5 → 3, as stack
# updates of `ManagerSize` do, under the same load, with the processor and, first, without
# it; writes target/bench/manager-count.json and target/bench/manager-count.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -p testbed -p lifecycle -p bootstrap -p e2e --bins
testbed=target/debug/testbed

scenario=rolling-upgrade
case "${1:-}" in
  hard-failures | manager-count | listeners)
    scenario=$1
    shift
    ;;
esac
args=(--compare)
for arg in "$@"; do
  if [ "$arg" = --no-compare ]; then args=(); fi
done
extra=()
for arg in "$@"; do
  [ "$arg" = --no-compare ] || extra+=("$arg")
done

# The AWS settings the tools read (moto, the emulator); the same for every fresh test bed.
"$testbed" up >/dev/null
eval "$("$testbed" env)"
"target/debug/$scenario" "${args[@]}" "${extra[@]}"

echo
echo "The test bed is still up. Try:"
printf '  %-44s %s\n' \
  "$testbed status" "# the swarm: every node Ready" \
  "curl -s http://10.77.0.1:8080/" "# the service through the load balancer" \
  "curl -s 127.0.0.1:5001/emulator/state" "# the emulator's state and history" \
  "eval \"\$($testbed env)\"" "# the AWS SDK and CLI now reach moto and the emulator" \
  "$testbed down" "# remove everything"
