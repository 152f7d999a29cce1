#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests, and the end-to-end tests
# against a real multi-node swarm and moto, brought up here and always torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo test --workspace --locked --no-run
cargo build --locked -p testbed
testbed=target/debug/testbed

step "template lint"
/var/cache/swarm-testbed/venv/bin/cfn-lint template.yaml

# Whatever happens from here on, the test bed goes away.
trap '"$testbed" down' EXIT
"$testbed" down >/dev/null 2>&1 || true # leftovers of an earlier, killed run

step "test bed up"
"$testbed" up
eval "$("$testbed" env)"

step "tests"
cargo test --workspace --locked

step "test bed down"
trap - EXIT
"$testbed" down
"$testbed" leftovers
