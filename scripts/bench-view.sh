#!/usr/bin/env bash
# Benchmark of the processor's view of the swarm past this machine's size: one refresh against
# a generated Engine API of 100, 1,000 and 5,000 nodes, idle and with 50 draining (calls,
# bytes, CPU and wall time per refresh). Writes target/bench/view.json. Needs no test bed.
# Usage: scripts/bench-view.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -q --release -p e2e --bin bench-view
target/release/bench-view
