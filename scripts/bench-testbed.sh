#!/usr/bin/env bash
# Benchmark of the test bed: time of `testbed up` from nothing and of `testbed down`, over a
# few rounds, and the memory (RSS) of each node's processes (dockerd, containerd, shims) and of
# moto, once the swarm is up and idle.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
scripts/setup.sh
cargo build --locked -q -p testbed -p bootstrap
testbed=target/debug/testbed
"$testbed" down >/dev/null

now() { date +%s.%N; }
ups=(); downs=()
for _ in $(seq "$rounds"); do
  t0=$(now); "$testbed" up >/dev/null; t1=$(now)
  ups+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')")
  sleep 5 # let the swarm settle before measuring memory (last round's figures are kept)
  memory="$(for node in m1 m2 m3 w1 w2; do
    pids="$(grep -l -e "/run/swarm-testbed/$node/" -e "/var/lib/swarm-testbed/$node/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | tr '\n' ',' | sed 's/,$//')"
    kib="$(ps -o rss= -p "$pids" | awk '{s += $1} END {print s}')"
    printf '%s %d\n' "$node" "$((kib / 1024))"
  done)"
  moto_kib="$(ps -o rss= -p "$(pgrep -f 'swarm-testbed/venv/bin/moto_server' | tr '\n' ',' | sed 's/,$//')" | awk '{s += $1} END {print s}')"
  t0=$(now); "$testbed" down >/dev/null; t1=$(now)
  downs+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')")
done
printf 'testbed up   (3 managers + 2 workers, all ready, image on every node, moto): %s s\n' "${ups[*]}"
printf 'testbed down (nothing left):                                               %s s\n' "${downs[*]}"
echo "memory per node, MiB RSS (dockerd + containerd + shims, idle swarm):"
echo "$memory" | sed 's/^/  /'
printf 'moto server: %d MiB RSS\n' "$((moto_kib / 1024))"
