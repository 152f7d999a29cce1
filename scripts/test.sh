#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the template lint, unit tests, and the
# end-to-end tests against a real multi-node swarm and moto, brought up here and always torn
# down, even when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }
testbed=target/debug/testbed
log=target/test-output.log

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo test --workspace --locked --no-run
cargo build --locked -p testbed -p lifecycle -p bootstrap -p e2e --bins

step "template lint"
/var/cache/swarm-testbed/venv/bin/cfn-lint template.yaml

# Whatever happens from here on, the test bed goes away.
trap '"$testbed" down' EXIT
"$testbed" down >/dev/null 2>&1 || true # leftovers of an earlier, killed run

step "test bed up"
"$testbed" up
state=/run/swarm-testbed/state.json
before="$(sha256sum < "$state")"
"$testbed" up >/dev/null
[ "$before" = "$(sha256sum < "$state")" ] || { echo "a second 'testbed up' changed the test bed" >&2; exit 1; }
eval "$("$testbed" env)"

step "tests"
# Two tests side by side, as the machine has two cores: each launches nodes, and more daemons
# starting at once make every answer slow enough to trip the AWS SDK's own timeouts.
# --no-fail-fast: one failing binary does not hide the others' results.
RUST_TEST_THREADS=2 cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"

step "the rolling upgrade under load, short: one manager and one worker replaced"
# Last among the tests: it replaces nodes the others know by name.
cargo test --locked -p e2e --test rolling -- --ignored 2>&1 | tee -a "$log"

step "the manager count changed live under load: ManagerSize 3 -> 5 -> 3"
# After the rolling upgrade: it adds and removes managers.
cargo test --locked -p e2e --test manager_count -- --ignored 2>&1 | tee -a "$log"

step "the Lambda front behind a real Lambda runtime API (cargo lambda watch)"
# After the tests: cargo lambda builds with cargo, which waits on the lock cargo test holds.
target/debug/lambda-check

step "test bed down, also after a killed run"
trap - EXIT
"$testbed" down
"$testbed" up >/dev/null 2>&1 & up_pid=$!
sleep 1.5
kill -9 "$up_pid" 2>/dev/null || true
wait "$up_pid" 2>/dev/null || true
"$testbed" down
"$testbed" leftovers

step "done"
# One closing line over every test binary, for whoever reads only the last line.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
