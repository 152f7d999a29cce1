#!/usr/bin/env bash
# Benchmark of the processor, drain by drain, against the test bed: notification → drain,
# Swarm's own reschedule time, the processor's overhead (last replacement running →
# CompleteLifecycleAction), serve's cold start and peak memory, parse/decide throughput.
# Usage: scripts/bench-drain.sh [DRAINS] (default 8). Leaves the test bed up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -q -p testbed -p bootstrap -p lifecycle -p e2e --bins
target/debug/testbed up >/dev/null
eval "$(target/debug/testbed env)"
target/debug/bench-drain "${1:-8}"
