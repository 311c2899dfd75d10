#!/usr/bin/env bash
# docs/cluster-demo.sh: three authgate gateways on one three-member etcd
# cluster, all on loopback, and a revocation on one refused on the others.
# See docs/cluster.md.
#
#   bash docs/cluster-demo.sh          # runs the demo, then stops everything
#   bash docs/cluster-demo.sh --stay   # leaves it running until Enter
#
# Needs Go (the etcd members are built from the Go module proxy, as the
# tests build them) and curl. Ports: gateways on 8601-8603, their admin
# endpoints on 2601-2603, the stand-in upstream on 8611 (AG_DEMO_BASE
# moves the 86xx ones).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STAY=0
[ "${1:-}" = --stay ] && STAY=1
BASE=${AG_DEMO_BASE:-8600}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/authgate-cluster-demo.XXXXXX")
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$DIR"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "building caddy (with authgate) and the demo's etcd"
go build -o "$DIR/caddy" ./cmd/caddy
go build -o "$DIR/etcdcluster" ./bench/cmd/etcdcluster

step "starting a three-member etcd cluster on loopback"
"$DIR/etcdcluster" -members 3 -dir "$DIR/etcd" -endpoints-file "$DIR/endpoints" >"$DIR/etcd.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 300); do [ -s "$DIR/endpoints" ] && break; sleep 0.1; done
ENDPOINTS=$(cat "$DIR/endpoints")
echo "etcd: $ENDPOINTS"

step "starting three gateways on it"
for i in 1 2 3; do
	cat >"$DIR/Caddyfile.$i" <<EOF
{
	admin 127.0.0.1:$((2600 + i))
	authgate {
		store etcd {
			endpoints $ENDPOINTS
			prefix /authgate-demo/
		}
	}
}
http://127.0.0.1:$((BASE + i)) {
	bind 127.0.0.1
	authgate {
		api plentymarkets /rest
	}
	reverse_proxy 127.0.0.1:$((BASE + 11))
}
EOF
	if [ "$i" = 1 ]; then
		cat >>"$DIR/Caddyfile.$i" <<EOF
http://127.0.0.1:$((BASE + 11)) {
	bind 127.0.0.1
	respond "the legacy app, as {http.request.header.X-Auth-User}" 200
}
EOF
	fi
	XDG_DATA_HOME=$DIR/data$i XDG_CONFIG_HOME=$DIR/config$i "$DIR/caddy" run --config "$DIR/Caddyfile.$i" >"$DIR/gw$i.log" 2>&1 &
	PIDS+=("$!")
done
for i in 1 2 3; do
	for _ in $(seq 200); do
		curl -s -o /dev/null "http://127.0.0.1:$((BASE + i))/" && break
		sleep 0.1
	done
	echo "gateway $i: http://127.0.0.1:$((BASE + i)) (admin 127.0.0.1:$((2600 + i)))"
done
ag() { local i=$1; shift; "$DIR/caddy" authgate "$@" --address "127.0.0.1:$((2600 + i))"; }
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

step "a user added on gateway 1, a key made on gateway 2"
PW='correct horse battery staple'
printf '%s\n' "$PW" | ag 1 user add alice --password-stdin --roles admin
CREATED=$(ag 2 key create --user alice --name demo --permissions read)
KEY=$(awk '$1 == "key" {print $2}' <<<"$CREATED")
KEY_ID=$(awk '$1 == "id" {print $2}' <<<"$CREATED")
for i in 1 2 3; do
	echo "gateway $i with the key: $(status -H "x-api-key: $KEY" "http://127.0.0.1:$((BASE + i))/orders")"
done

step "the key revoked on gateway 3; gateways 1 and 2 refuse it on their next request"
ag 3 key revoke "$KEY_ID"
for i in 1 2; do
	echo "gateway $i with the revoked key: $(status -H "x-api-key: $KEY" "http://127.0.0.1:$((BASE + i))/orders")"
done

step "a login on gateway 1, its logout on gateway 2, its token refused on gateway 3"
ACCESS=$(curl -s "http://127.0.0.1:$((BASE + 1))/rest/login" -d username=alice -d "password=$PW" | sed -E 's/.*"access_token":"([^"]*)".*/\1/')
echo "gateway 3 with the token: $(status -H "Authorization: Bearer $ACCESS" "http://127.0.0.1:$((BASE + 3))/orders")"
curl -s -X POST -o /dev/null "http://127.0.0.1:$((BASE + 2))/rest/logout" -H "Authorization: Bearer $ACCESS"
echo "gateway 3 after the logout on gateway 2: $(status -H "Authorization: Bearer $ACCESS" "http://127.0.0.1:$((BASE + 3))/orders")"

if [ "$STAY" = 1 ]; then
	step "running; try: $DIR/caddy authgate user list --address 127.0.0.1:2601   (Enter stops everything)"
	read -r _
fi
step "stopping"
