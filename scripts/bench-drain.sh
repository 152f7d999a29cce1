#!/usr/bin/env bash
# Benchmark of the processor, drain by drain, against the test bed: notification → drain,
# Swarm's own reschedule time, the processor's overhead (last replacement running →
# CompleteLifecycleAction), serve's cold start and peak memory, parse/decide throughput.
# Measures the release build, as the stack deploys it.
# Usage: scripts/bench-drain.sh [DRAINS] (default 8). Leaves the test bed up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -q -p testbed -p bootstrap --bins
# The build the stack deploys: the processor in release mode, and the benchmark beside it
# (it starts the `lifecycle` next to itself).
cargo build --locked -q --release -p lifecycle -p e2e --bin lifecycle --bin bench-drain
target/debug/testbed up >/dev/null
eval "$(target/debug/testbed env)"
target/release/bench-drain "${1:-8}"
