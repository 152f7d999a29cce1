#!/usr/bin/env bash
# Benchmark at scale: the test bed grown to 60 nodes (or as many as memory holds, said so),
# 50 instances terminated at once under load through the load balancer, one processor draining
# them all. Writes target/bench/scale.json (nodes, terminations, completed, completed_early,
# the Auto Scaling and Docker call rates from the processor's own counters, overhead, drain and
# reschedule times) and fails unless all 50 completed, none early, within the call budget.
# Usage: scripts/bench-scale.sh. Leaves the test bed up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -q -p testbed -p bootstrap -p lifecycle -p e2e --bins
target/debug/testbed up >/dev/null
eval "$(target/debug/testbed env)"
target/debug/bench-scale
