#!/usr/bin/env bash
# The demo, as far as it goes today: brings the local test bed up (a real 3-manager, 2-worker
# Docker Swarm, one dockerd per network namespace, and moto server for the AWS APIs), runs a
# web service of 4 replicas on it, shows the swarm and the service answering, and leaves it all
# running for you to explore. `target/debug/testbed down` removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -p testbed -p bootstrap
testbed=target/debug/testbed

"$testbed" up
export DOCKER_HOST=unix:///run/swarm-testbed/m1/docker.sock
docker service rm demo-web >/dev/null 2>&1 || true
docker service create --detach --quiet --name demo-web --replicas 4 \
  --publish mode=host,target=80,published=8080 testbed/busybox:latest \
  sh -c 'hostname > /www/index.html && exec httpd -f -p 80 -h /www' 2>/dev/null
for _ in $(seq 50); do
  [ "$(docker service ps demo-web --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^Running')" = 4 ] && break
  sleep 0.2
done
echo
docker service ps demo-web --format 'table {{.Name}}\t{{.Node}}\t{{.CurrentState}}\t{{.Ports}}'
echo
for node in $(seq 11 15); do
  printf '10.77.0.%s:8080 answers: %s\n' "$node" "$(curl -s -m 2 "http://10.77.0.$node:8080/" || echo '(no task here)')"
done
cat <<EOT

The test bed is up. Try:
  export DOCKER_HOST=unix:///run/swarm-testbed/m1/docker.sock; docker node ls
  $testbed kill w1        # power off a node; 'docker node ls' shows it Down in seconds
  $testbed start w1       # and back
  eval "\$($testbed env)"  # the AWS SDK and CLI now reach moto
  $testbed down           # remove everything
EOT
