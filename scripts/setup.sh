#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian 12 machine, as root:
# Debian packages (dockerd, busybox-static, iproute2, ...), the pinned Python tools (moto server,
# cfn-lint) in a virtualenv, and checks the Rust toolchain. Idempotent, and quick (well under a
# second) when everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (the test bed makes network namespaces and bridges)" >&2
  exit 1
fi

# Debian packages: what each node runs (docker.io brings dockerd, containerd, runc), the image
# (busybox-static), the load balancer (haproxy), and the plumbing of the test bed.
packages=(docker.io containerd runc busybox-static iproute2 iptables util-linux tar hostname
          procps python3 python3-venv ca-certificates openssl curl haproxy)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The pinned Python tools, in a virtualenv the test bed finds (tests/testbed/src/moto.rs).
venv=/var/cache/swarm-testbed/venv
requirements=tests/testbed/requirements.txt
stamp="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$stamp" ]; then
  echo "setup: installing the pinned moto server and cfn-lint into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$requirements"
  echo "$stamp" > "$venv/.requirements.sha256"
fi

# Rust: the AWS SDK crates need rustc 1.94.1 or newer.
if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing: install Rust 1.94.1 or newer (rustup)" >&2
  exit 1
fi
rustc_version="$(rustc --version | cut -d' ' -f2)"
if [ "$(printf '%s\n1.94.1\n' "$rustc_version" | sort -V | head -n1)" != 1.94.1 ]; then
  echo "setup: rustc $rustc_version is too old: the AWS SDK crates need 1.94.1 or newer" >&2
  exit 1
fi

# cfn-guard, the policy-as-code checker of template.yaml (tests/template/stack.guard), pinned
# and built from crates.io (about 1.5 min on 2 cores, once per machine).
guard_version=3.2.1
guard_root=/var/cache/swarm-testbed/cfn-guard
if [ "$("$guard_root/bin/cfn-guard" --version 2>/dev/null | awk '{print $2}')" != "$guard_version" ]; then
  echo "setup: building cfn-guard $guard_version into $guard_root"
  CARGO_TARGET_DIR=/var/cache/swarm-testbed/cfn-guard-build \
    cargo install --quiet --locked cfn-guard --version "$guard_version" --root "$guard_root"
  rm -rf /var/cache/swarm-testbed/cfn-guard-build
fi
