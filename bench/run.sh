#!/usr/bin/env bash
# bench/run.sh: authgate's cost as a ratio against plain Caddy, on the same
# machine, in the same run. See bench/README.md.
#
#   bash bench/run.sh            # the full run: 5 rounds, logins, go bench
#                                # (5-7 minutes on the 2-core machine)
#   bash bench/run.sh --quick    # 1 round of 2 s, to check the script works
#   bash bench/run.sh --scale    # the full run, then bench/cmd/scale
#   bash bench/run.sh --scale-only   # only the million-record store (~9 min)
#
# Options: --rounds N, --duration SECONDS, --conns N, --no-logins,
# --no-gobench, --no-etcd (leave out G, authgate on etcd), --keep (keep
# the scratch directory). Environment:
# AG_F_USERS / AG_F_KEYS / AG_F_TOKENS size configuration F (10000 /
# 100000 / 100000); AG_SERVER_CPU / AG_CLIENT_CPU the CPUs to pin to
# (0 / 1); TMPDIR where the scratch directory goes (its disk is the one
# the stores are on).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench

ROUNDS=5
DURATION=5
CONNS=8
THREADS=1
WARMUP=2
LOGIN_SECONDS=8
DO_LOGINS=1
DO_GOBENCH=1
DO_HTTP=1
DO_SCALE=0
DO_ETCD=1
KEEP=0
F_USERS=${AG_F_USERS:-10000}
F_KEYS=${AG_F_KEYS:-100000}
F_TOKENS=${AG_F_TOKENS:-100000}
SERVER_CPU=${AG_SERVER_CPU:-0}
CLIENT_CPU=${AG_CLIENT_CPU:-1}
PASSWORD=bench-password-1

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
	case $1 in
	--quick) ROUNDS=1 DURATION=2 WARMUP=1 LOGIN_SECONDS=3 DO_GOBENCH=0 ;;
	--rounds) ROUNDS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	--no-logins) DO_LOGINS=0 ;;
	--no-gobench) DO_GOBENCH=0 ;;
	--no-etcd) DO_ETCD=0 ;;
	--scale) DO_SCALE=1 ;;
	--scale-only) DO_SCALE=1 DO_HTTP=0 DO_LOGINS=0 DO_GOBENCH=0 ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

T0=$(date +%s)
say() { printf '\n== %s (%ss)\n' "$*" $(($(date +%s) - T0)); }

# ---------------------------------------------------------------- tools --

if [ "$DO_HTTP" = 1 ] && ! command -v wrk >/dev/null; then
	say "installing wrk (Debian package)"
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && apt-get install -y -qq wrk >/dev/null
	else
		sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null
	fi
fi
for tool in go curl; do
	command -v $tool >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done

# Pin the server and the load generator to different CPUs when we can.
# GOMAXPROCS follows the server's CPU mask, so the server runs on one CPU.
NCPU=$(nproc)
if command -v taskset >/dev/null && [ "$NCPU" -ge 2 ]; then
	PIN_SERVER=(taskset -c "$SERVER_CPU")
	PIN_CLIENT=(taskset -c "$CLIENT_CPU")
	PINNING="server on CPU $SERVER_CPU, load generator on CPU $CLIENT_CPU"
else
	PIN_SERVER=()
	PIN_CLIENT=()
	PINNING="not pinned (taskset missing or fewer than 2 CPUs): server and load generator share the CPUs"
fi

STATE=$(mktemp -d "${TMPDIR:-/tmp}/authgate-bench.XXXXXX")
SHM=""
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "$SHM" ]; then
		rm -rf "$SHM"
	fi
	if [ "$KEEP" = 1 ]; then
		echo "scratch directory kept: $STATE"
	else
		rm -rf "$STATE"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "machine"
echo "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(go version); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "pinning: $PINNING"
echo "scratch: $STATE ($(df -PT "$STATE" | awk 'NR==2 {print $2}'))"

say "building"
(cd "$ROOT" && go build -o "$STATE/caddy" ./cmd/caddy &&
	go build -o "$STATE/seed" ./bench/cmd/seed &&
	go build -o "$STATE/logins" ./bench/cmd/logins &&
	go build -o "$STATE/etcdcluster" ./bench/cmd/etcdcluster &&
	go build -o "$STATE/scale" ./bench/cmd/scale)
CADDY=$STATE/caddy

# ------------------------------------------------------------ scale only --

run_scale() {
	say "scale: 1,000,000 users and 1,000,000 API keys (bench/cmd/scale)"
	local dir=$STATE
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		SHM=$(mktemp -d /dev/shm/authgate-scale.XXXXXX)
		dir=$SHM
	fi
	"${PIN_SERVER[@]}" "$STATE/scale" -dir "$dir" -move-to "$STATE"
	if [ -n "$SHM" ]; then
		rm -rf "$SHM"
		SHM=""
	fi
}

if [ "$DO_HTTP" = 0 ]; then
	if [ "$DO_SCALE" = 1 ]; then
		run_scale
	fi
	say "done"
	exit 0
fi

# Every configuration's front port (84xx) and upstream port (85xx).
CONFIGS=(A B C D E F)
if [ "$DO_ETCD" = 1 ]; then
	CONFIGS+=(G)
fi
declare -A PORT=([A]=8401 [B]=8402 [C]=8403 [D]=8404 [E]=8405 [F]=8406 [G]=8407)
declare -A PID
for c in "${CONFIGS[@]}"; do
	for p in "${PORT[$c]}" $((PORT[$c] + 100)); do
		if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then
			echo "run.sh: port $p is in use; stop whatever listens there" >&2
			exit 1
		fi
	done
done

# --------------------------------------------------------------- stores --

say "seeding stores"
SEED_ARGS=(-issuer authgate-bench -audience authgate-bench -ttl 24h -alg EdDSA -password "$PASSWORD")
mkdir -p "$STATE/c" "$STATE/d" "$STATE/f"
# C: 16 users (the login clients use them too), one API key.
"$STATE/seed" "${SEED_ARGS[@]}" -db "$STATE/c.db" -out "$STATE/c" -users 16 -keys 1
# D: one user, one session with its access token.
"$STATE/seed" "${SEED_ARGS[@]}" -db "$STATE/d.db" -out "$STATE/d" -users 1 -sessions 1
# F: the big one, stored in batches of 5,000 records per transaction.
"$STATE/seed" "${SEED_ARGS[@]}" -db "$STATE/f.db" -out "$STATE/f" \
	-users "$F_USERS" -keys "$F_KEYS" -sessions "$F_TOKENS"
# G: a one-member etcd on loopback (on the load generator's CPU, to leave
# the server's alone; a cached key reads nothing from it), C's store copied
# in.
if [ "$DO_ETCD" = 1 ]; then
	"${PIN_CLIENT[@]}" "$STATE/etcdcluster" -members 1 -dir "$STATE/etcd" -endpoints-file "$STATE/etcd.endpoints" \
		>"$STATE/etcd.log" 2>&1 &
	PIDS+=("$!")
	for i in $(seq 300); do
		[ -s "$STATE/etcd.endpoints" ] && break
		sleep 0.1
	done
	[ -s "$STATE/etcd.endpoints" ] || { echo "run.sh: etcd did not start:" >&2; cat "$STATE/etcd.log" >&2; exit 1; }
	export AG_BENCH_ETCD
	AG_BENCH_ETCD=$(cat "$STATE/etcd.endpoints")
	AG_BENCH_STATE=$STATE "$CADDY" authgate migrate --from-db "$STATE/c.db" --config "$BENCH/G.Caddyfile" --adapter caddyfile >/dev/null
fi
BCRYPT=$("$CADDY" hash-password --algorithm bcrypt --plaintext "$PASSWORD")
KEY=$(head -1 "$STATE/c/keys.txt")
TOKEN=$(head -1 "$STATE/d/tokens.txt")
BASIC=$(printf 'bench:%s' "$PASSWORD" | base64 -w0)
F_CREDS=$((F_KEYS + F_TOKENS))

# -------------------------------------------------------------- servers --

declare -A WRK_ARGS=(
	[A]=""
	[B]=""
	[C]="X-Api-Key: $KEY"
	[D]="Authorization: Bearer $TOKEN"
	[E]="Authorization: Basic $BASIC"
	[F]=""
	[G]="X-Api-Key: $KEY"
)

start_server() { # config
	local c=$1
	AG_BENCH_STATE=$STATE AG_BENCH_BCRYPT=$BCRYPT \
		XDG_DATA_HOME=$STATE/xdg XDG_CONFIG_HOME=$STATE/xdg HOME=$STATE \
		"${PIN_SERVER[@]}" "$CADDY" run --adapter caddyfile --config "$BENCH/$c.Caddyfile" \
		>"$STATE/$c.log" 2>&1 &
	PID[$c]=$!
	PIDS+=("$!")
	local i
	for i in $(seq 100); do
		if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${PORT[$c]}/"; then
			return 0
		fi
		if ! kill -0 "${PID[$c]}" 2>/dev/null; then
			echo "run.sh: configuration $c did not start:" >&2
			tail -20 "$STATE/$c.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "run.sh: configuration $c is not answering on port ${PORT[$c]}" >&2
	exit 1
}

stop_server() { # config
	local c=$1
	kill -INT "${PID[$c]}" 2>/dev/null || true
	wait "${PID[$c]}" 2>/dev/null || true
}

# expect config status [curl args...]: one request, its status checked.
expect() {
	local c=$1 want=$2
	shift 2
	local got
	got=$(curl -s -o "$STATE/body" -w '%{http_code}' --max-time 10 "$@" "http://127.0.0.1:${PORT[$c]}/app/orders?id=7")
	if [ "$got" != "$want" ]; then
		echo "run.sh: configuration $c answered $got, want $want: $(head -c 300 "$STATE/body")" >&2
		exit 1
	fi
}

say "starting A-F (caddy run, $PINNING)"
for c in "${CONFIGS[@]}"; do
	start_server "$c"
done
grep -ho 'maxprocs: [^"]*' "$STATE/B.log" | head -1 || true

say "checking that every configuration answers as it should"
expect A 200
expect B 200
expect C 401
expect C 200 -H "X-Api-Key: $KEY"
expect D 401 -H "Authorization: Bearer ${TOKEN}x"
expect D 200 -H "Authorization: Bearer $TOKEN"
expect E 401
expect E 200 -H "Authorization: Basic $BASIC"
expect F 200 -H "X-Api-Key: $(tail -1 "$STATE/f/keys.txt")"
expect F 200 -H "Authorization: Bearer $(tail -1 "$STATE/f/tokens.txt")"
G_NOTE=""
if [ "$DO_ETCD" = 1 ]; then
	expect G 401
	expect G 200 -H "X-Api-Key: $KEY"
	G_NOTE=", G"
fi
echo "ok: A, B 200; C, D, E$G_NOTE 401 without a valid credential and 200 with it; F 200"

# ----------------------------------------------------------------- wrk --

F_NEXT=0 # where F's rotation goes on
F_DONE=0 # F requests so far
RESULTS=$STATE/results.tsv
: >"$RESULTS"

# measure config seconds label: one wrk run; sets LINE to its RESULT line.
# (Not in a subshell: F's place in the rotation must carry over.)
measure() {
	local c=$1 secs=$2 label=$3 out=$STATE/wrk-$1-$3.txt
	local env=(AG_THREADS=$THREADS)
	local hdr=()
	if [ "$c" = F ]; then
		env+=(AG_KEYS_FILE="$STATE/f/keys.txt" AG_TOKENS_FILE="$STATE/f/tokens.txt" AG_START=$F_NEXT)
	fi
	if [ -n "${WRK_ARGS[$c]}" ]; then
		hdr=(-H "${WRK_ARGS[$c]}")
	fi
	local cpu0
	cpu0=$(cputicks "${PID[$c]}")
	env "${env[@]}" "${PIN_CLIENT[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency \
		-s "$BENCH/wrk/bench.lua" "${hdr[@]}" "http://127.0.0.1:${PORT[$c]}/app/orders?id=7" >"$out" 2>&1 || {
		echo "run.sh: wrk failed on $c:" >&2
		cat "$out" >&2
		exit 1
	}
	local cpu1 line
	cpu1=$(cputicks "${PID[$c]}")
	line=$(grep '^RESULT ' "$out" || true)
	# The server's CPU time per request: unlike req/s, it hardly moves when
	# other processes take turns on the server's CPU.
	LINE="$line cpu_ticks=$((cpu1 - cpu0)) secs=$secs"
	if [ -z "$line" ]; then
		echo "run.sh: no result from wrk on $c:" >&2
		cat "$out" >&2
		exit 1
	fi
	if [ "$c" = F ]; then
		local n
		n=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
		F_NEXT=$(((F_NEXT + n) % (F_CREDS > 0 ? F_CREDS : 1)))
		F_DONE=$((F_DONE + n))
	fi
}

# cputicks pid: user+system CPU time of the process, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

field() { sed "s/.* $1=\([0-9.]*\).*/\1/" <<<"$2"; }

say "warm-up: ${WARMUP}s each; F until every one of its $F_CREDS credentials was used once"
for c in "${CONFIGS[@]}"; do
	[ "$c" = F ] && continue
	measure "$c" "$WARMUP" warmup
	printf '  %s %8.0f req/s\n' "$c" "$(field rps "$LINE")"
done
pass=0
while [ "$F_DONE" -lt "$F_CREDS" ] && [ $pass -lt 12 ]; do
	pass=$((pass + 1))
	measure F 10 "warmup$pass"
	printf '  F %8.0f req/s, %d of %d credentials used\n' "$(field rps "$LINE")" "$F_DONE" "$F_CREDS"
done
if [ "$F_DONE" -lt "$F_CREDS" ]; then
	echo "  (F's warm-up stopped after 120 s: some credentials are still cold)"
fi

say "measuring: $ROUNDS rounds of ${CONFIGS[*]}, ${DURATION}s each, wrk -t$THREADS -c$CONNS"
printf '%-5s %-4s %10s %9s %9s %10s %11s %8s %s\n' round cfg "req/s" "p50_ms" "p99_ms" requests "cpu_us/req" "srv_cpu" ""
for r in $(seq "$ROUNDS"); do
	for c in "${CONFIGS[@]}"; do
		measure "$c" "$DURATION" "r$r"
		line=$LINE
		rps=$(field rps "$line")
		p50=$(field p50_us "$line")
		p99=$(field p99_us "$line")
		n=$(field requests "$line")
		ticks=$(field cpu_ticks "$line")
		bad=$(($(field non2xx "$line") + $(field errors "$line")))
		flag=""
		[ "$bad" -gt 0 ] && flag="!! $bad non-2xx or failed"
		# cpu_us/req: server CPU time per request; srv_cpu: the share of
		# one CPU the server got during the run (well under 100%: other
		# processes took turns on it, or the client could not keep up).
		cpu=$(awk "BEGIN{printf \"%.1f\", $ticks * $TICK_US / ($n > 0 ? $n : 1)}")
		share=$(awk "BEGIN{printf \"%.0f%%\", 100 * $ticks * $TICK_US / ($DURATION * 1000000)}")
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$rps" "$p50" "$p99" "$n" "$bad" "$cpu" >>"$RESULTS"
		printf '%-5s %-4s %10.0f %9.3f %9.3f %10d %11s %8s %s\n' "$r" "$c" "$rps" \
			"$(awk "BEGIN{print $p50/1000}")" "$(awk "BEGIN{print $p99/1000}")" "$n" "$cpu" "$share" "$flag"
	done
done

for c in "${CONFIGS[@]}"; do
	rss=$(awk '/^VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/${PID[$c]}/status" 2>/dev/null || echo "?")
	RSS_NOTE="${RSS_NOTE:-}$c $rss, "
done

say "summary (medians over $ROUNDS rounds; ratios are per round, against B of the same round)"
awk -F'\t' -v rounds="$ROUNDS" -v fkeys="$F_KEYS" -v ftokens="$F_TOKENS" -v configs="${CONFIGS[*]}" '
function median(arr, n,    i, j, t) {
	for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j+1] = arr[j]; arr[j+1] = t }
	return (n % 2) ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
}
{ rps[$2, $1] = $3; p50[$2, $1] = $4; p99[$2, $1] = $5; bad += $7; cpu[$2, $1] = $8 }
END {
	ncfg = split(configs, cfgs, " ")
	desc["A"] = "respond (the floor)"
	desc["B"] = "reverse_proxy to A (baseline)"
	desc["C"] = "authgate, one API key"
	desc["D"] = "authgate, one EdDSA Bearer token"
	desc["E"] = "basic_auth (bcrypt, cached)"
	desc["F"] = sprintf("authgate, %gk keys + %gk tokens", fkeys / 1000, ftokens / 1000)
	desc["G"] = "C on the etcd backend"
	printf "%-4s %-34s %9s %8s %8s %11s %-13s %10s %10s\n", "cfg", "", "req/s", "p50_ms", "p99_ms", "ratio_to_B", "(min-max)", "cpu_us/req", "cpu_ratio"
	for (k = 1; k <= ncfg; k++) {
		c = cfgs[k]
		for (r = 1; r <= rounds; r++) { a[r] = rps[c, r]; b[r] = p50[c, r]; d[r] = p99[c, r] }
		mr[c] = median(a, rounds); m50 = median(b, rounds); m99 = median(d, rounds)
		lo = 1e18; hi = 0
		for (r = 1; r <= rounds; r++) { x = rps[c, r] / rps["B", r]; q[r] = x; if (x < lo) lo = x; if (x > hi) hi = x }
		ratio[c] = median(q, rounds)
		# The CPU view: B cpu_us/req over this cpu_us/req, per round.
		for (r = 1; r <= rounds; r++) { u[r] = cpu[c, r]; v[r] = (cpu[c, r] > 0) ? cpu["B", r] / cpu[c, r] : 0 }
		mc[c] = median(u, rounds); cratio[c] = median(v, rounds)
		printf "%-4s %-34s %9.0f %8.3f %8.3f %11.3f %-13s %10.1f %10.3f\n", c, desc[c], mr[c], m50/1000, m99/1000, ratio[c], sprintf("(%.3f-%.3f)", lo, hi), mc[c], cratio[c]
	}
	print ""
	n = 0; held = 0
	n++; ok = ratio["C"] >= 0.95; held += ok; printf "  C/B = %.3f  target >= 0.95  %s\n", ratio["C"], ok ? "held" : "MISSED"
	n++; ok = ratio["D"] >= 0.95; held += ok; printf "  D/B = %.3f  target >= 0.95  %s\n", ratio["D"], ok ? "held" : "MISSED"
	n++; ok = ratio["F"] >= 0.90; held += ok; printf "  F/B = %.3f  target >= 0.90  %s\n", ratio["F"], ok ? "held" : "MISSED"
	printf "  E/B = %.3f  (Caddy basic_auth, for comparison)\n", ratio["E"]
	if ("G" in ratio) printf "  G/B = %.3f  against C/B %.3f: a cached key on etcd reads nothing remote\n", ratio["G"], ratio["C"]
	n++; ok = ratio["C"] > ratio["E"] && ratio["D"] > ratio["E"]; held += ok
	printf "  C and D ahead of E: C %.3f, D %.3f vs E %.3f  %s\n", ratio["C"], ratio["D"], ratio["E"], ok ? "held" : "MISSED"
	printf "\n  %d of %d targets held (judged on req/s ratios)\n", held, n
	printf "  CPU view, B cpu_us/req over X cpu_us/req: C %.3f, D %.3f, E %.3f, F %.3f\n", cratio["C"], cratio["D"], cratio["E"], cratio["F"]
	if (bad > 0) printf "  !! %d requests were answered with a non-2xx status or failed: the figures are not valid\n", bad
}' "$RESULTS"
echo "  peak RSS per server (VmHWM): ${RSS_NOTE%, }"
echo "  load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
BAD=$(awk -F'\t' '{s += $7} END {print s + 0}' "$RESULTS")

for c in "${CONFIGS[@]}"; do
	stop_server "$c"
done

# --------------------------------------------------------------- logins --

if [ "$DO_LOGINS" = 1 ]; then
	say "logins: POST /rest/login against C, argon2id m=19 MiB t=2 p=1, ${LOGIN_SECONDS}s per phase, a fresh server per phase"
	echo "(the server's hash bound: 2 x GOMAXPROCS concurrent hashes; GOMAXPROCS follows the CPUs it may use)"
	header=true
	for n in 1 2 16; do
		start_server C
		"${PIN_CLIENT[@]}" "$STATE/logins" -url "http://127.0.0.1:${PORT[C]}/rest/login" \
			-user-prefix bench -users 16 -password "$PASSWORD" -clients $n \
			-duration "${LOGIN_SECONDS}s" -pid "${PID[C]}" -header=$header
		header=false
		stop_server C
	done
fi

# ------------------------------------------------------------ go bench --

if [ "$DO_GOBENCH" = 1 ]; then
	say "in-process: go test -run '^\$' -bench 'Handler|Replacer' -benchmem -count 6 ./caddymodule"
	(cd "$ROOT" && go test -run '^$' -bench 'Handler|Replacer' -benchmem -count 6 ./caddymodule) | tee "$STATE/gobench.txt"
	BENCHSTAT=$(command -v benchstat || true)
	if [ -z "$BENCHSTAT" ]; then
		if GOBIN=$STATE/bin go install golang.org/x/perf/cmd/benchstat@latest >/dev/null 2>&1; then
			BENCHSTAT=$STATE/bin/benchstat
		fi
	fi
	if [ -n "$BENCHSTAT" ]; then
		echo
		"$BENCHSTAT" "$STATE/gobench.txt"
	else
		echo "(benchstat could not be installed; the raw figures are above)"
	fi
fi

if [ "$DO_SCALE" = 1 ]; then
	run_scale
fi

say "done"
if [ "$BAD" -gt 0 ]; then
	exit 1
fi
