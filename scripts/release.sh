#!/usr/bin/env bash
# Builds what a stack deploys, in release mode, with cargo-lambda and zig (hash-pinned from
# PyPI in scripts/release-requirements.txt, in their own virtualenv):
#   target/lambda/bootstrap/bootstrap   the node bootstrap, x86_64 Linux, glibc 2.28 and later
#   target/lambda/lifecycle/bootstrap   the processor, for Lambda's provided.al2023 on arm64
# and prints the bootstrap's SHA-256, the stack's BootstrapSha256. See the README's Deploy.
set -euo pipefail
cd "$(dirname "$0")/.."

# Not under /var/cache/swarm-testbed: `testbed down` stops every process running from there.
venv="${XDG_CACHE_HOME:-$HOME/.cache}/swarm-aws/release-venv"
requirements=scripts/release-requirements.txt
stamp="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$stamp" ]; then
  echo "release: installing cargo-lambda and zig into $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$requirements"
  echo "$stamp" > "$venv/.requirements.sha256"
fi
export PATH="$venv/bin:$PATH"

# rustup, where there is one, fetches the two targets; elsewhere they must be installed.
if command -v rustup >/dev/null; then
  rustup target add aarch64-unknown-linux-gnu x86_64-unknown-linux-gnu >/dev/null
fi
cargo lambda build --release --x86-64 --bin bootstrap
cargo lambda build --release --arm64 --bin lifecycle
sha="$(sha256sum target/lambda/bootstrap/bootstrap | cut -d' ' -f1)"
echo "release: target/lambda/bootstrap/bootstrap (BootstrapSha256=$sha)"
echo "release: target/lambda/lifecycle/bootstrap (the processor, arm64)"
