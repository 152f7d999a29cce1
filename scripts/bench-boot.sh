#!/usr/bin/env bash
# Benchmark of the node bootstrap: a 3-manager + 2-worker swarm from nothing, launched
# through the Auto Scaling emulator; launch → Ready per node and per cluster.
# Usage: scripts/bench-boot.sh [ROUNDS] (default 5). Leaves the test bed up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -q -p testbed -p bootstrap -p e2e --bins
target/debug/testbed up >/dev/null
eval "$(target/debug/testbed env)"
target/debug/bench-boot "${1:-5}"
