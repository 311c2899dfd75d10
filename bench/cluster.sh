#!/usr/bin/env bash
# bench/cluster.sh: authgate on a three-member etcd cluster, on loopback
# (bench/cmd/cluster): revocation propagation across three gateways,
# logins and refreshes per second on etcd against bbolt, and the store's
# write latency. About a minute. See bench/README.md and docs/cluster.md.
#
#   bash bench/cluster.sh [flags of bench/cmd/cluster, e.g. -revocations 500]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/authgate-cluster.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
echo "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(go version)"
(cd "$ROOT" && go build -o "$DIR/caddy" ./cmd/caddy && go build -o "$DIR/cluster" ./bench/cmd/cluster)
"$DIR/cluster" -caddy "$DIR/caddy" "$@"
