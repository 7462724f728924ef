#!/usr/bin/env bash
# bench-vs-nats.sh: produce throughput and latency of lance (L1, one node)
# next to NATS JetStream (file storage, one node), on loopback, with the
# same message size, connections and messages in flight, one run after the
# other, each on a fresh server and data directory. Prints one table and
# the ratios lance/NATS. docs/performance.md explains what each figure is.
#
# It builds nats-server and the nats CLI from the Go module proxy (cached
# in $BENCH_CACHE), and lance and lnc-bench from this checkout.
#
# Environment (defaults in brackets):
#   DURATION       measured seconds of each run [3]
#   WARMUP         warm-up seconds of each run [1]
#   MSG_SIZE       message (record value) size in bytes [1024]
#   PROFILES       space-separated CONNSxDEPTH profiles [8x256 1x64];
#                  DEPTH is the messages in flight per connection
#   LANCE_BATCHES  batches lance splits DEPTH into [4]: -p 4 and
#                  DEPTH/4 records per batch keep DEPTH records in flight
#   LANCE_NATIVE   1 adds a lance row with DEPTH batches of 64 KiB in
#                  flight (lnc-bench's own reading of --pipeline) [1]
#   BENCH_CACHE    where the NATS binaries are kept
#                  [${XDG_CACHE_HOME:-$HOME/.cache}/lance-bench]
#   BENCH_DIR      parent of the work directory, which holds the servers'
#                  data: put it on the disk to be measured [${TMPDIR:-/tmp}]
#   KEEP_WORK      1 keeps the work directory (logs, raw outputs) [0]
#   LANCE_FLAGS    extra flags for lance, e.g. "--io-o-direct --io-batch-size 16MiB"
#                  (docs/configuration.md) [none: the defaults]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-1}
MSG_SIZE=${MSG_SIZE:-1024}
PROFILES=${PROFILES:-"8x256 1x64"}
LANCE_BATCHES=${LANCE_BATCHES:-4}
LANCE_NATIVE=${LANCE_NATIVE:-1}
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lance-bench}
KEEP_WORK=${KEEP_WORK:-0}
LANCE_FLAGS=${LANCE_FLAGS:-}
NATS_SERVER_MOD=github.com/nats-io/nats-server/v2@v2.15.2
NATSCLI_MOD=github.com/nats-io/natscli/nats@v0.5.0

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-vs-nats.XXXXXX")
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
	if [[ $KEEP_WORK == 1 ]]; then
		echo "work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
# Benchmarks run in the background and the script waits for them: a
# trapped signal interrupts `wait` at once (a foreground child would make
# bash hold the signal until the child ends, and then carry on).
CHILD=
interrupted() {
	log "interrupted"
	[[ -n $CHILD ]] && kill -TERM "$CHILD" 2>/dev/null
	exit 130
}
trap cleanup EXIT
trap interrupted INT TERM

# run_child CMD...: runs CMD in the background and waits for it; returns
# its exit status.
run_child() {
	local rc=0
	"$@" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=
	return "$rc"
}

# Messages go to the script's own stderr (fd 9), also from inside a
# function whose output is redirected to a log file.
exec 9>&2
log() { echo "bench-vs-nats: $*" >&9; }
die() { log "$*"; exit 1; }

for v in DURATION WARMUP MSG_SIZE LANCE_BATCHES; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not a whole number"
done
((DURATION > 0)) || die "DURATION must be positive"
((LANCE_BATCHES > 0)) || die "LANCE_BATCHES must be positive"
FSTYPE=$(stat -f -c %T "$WORK" 2>/dev/null || echo unknown)
if [[ $FSTYPE == tmpfs || $FSTYPE == ramfs ]]; then
	log "warning: $WORK is on $FSTYPE, where fsync costs nothing; set BENCH_DIR to a directory on a disk"
fi

# --- binaries -----------------------------------------------------------

mkdir -p "$BENCH_CACHE/bin" "$WORK/bin"
NATS_SERVER=$BENCH_CACHE/bin/nats-server
NATS=$BENCH_CACHE/bin/nats
if ! "$NATS_SERVER" --version 2>/dev/null | grep -q "v${NATS_SERVER_MOD##*@v}"; then
	log "building nats-server ${NATS_SERVER_MOD##*@} (once; cached in $BENCH_CACHE)"
	GOBIN=$BENCH_CACHE/bin GOWORK=off go install "$NATS_SERVER_MOD"
fi
if ! "$NATS" --version 2>/dev/null | grep -q "${NATSCLI_MOD##*@}"; then
	log "building the nats CLI ${NATSCLI_MOD##*@} (once; cached in $BENCH_CACHE)"
	GOBIN=$BENCH_CACHE/bin GOWORK=off go install "$NATSCLI_MOD"
fi
log "building lance and lnc-bench"
(cd "$ROOT/lance" && go build -o "$WORK/bin/lance" ./cmd/lance)
(cd "$ROOT/lnc-bench" && go build -o "$WORK/bin/lnc-bench" .)
LANCE=$WORK/bin/lance
LNC_BENCH=$WORK/bin/lnc-bench

# --- helpers ------------------------------------------------------------

# free_port prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# http_ok URL-PATH PORT: true when GET answers 200.
http_ok() {
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$2" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
	IFS= read -r -t 2 line <&3 || line=
	exec 3<&- 3>&-
	[[ $line == *" 200 "* ]]
}

# peak_rss PID prints the process's peak RSS (VmHWM) in bytes.
peak_rss() {
	awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# stop_server PID: SIGTERM, then SIGKILL after 5 s.
stop_server() {
	local pid=$1 keep=() p
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

SERVER_PID=
SERVER_PORT=

# start_nats NAME SYNC: JetStream with file storage; SYNC is "default" or
# "always" (sync_interval: always: fsync after every write).
start_nats() {
	local dir=$WORK/$1 port
	port=$(free_port)
	mkdir -p "$dir/store"
	{
		echo "listen: 127.0.0.1:$port"
		echo "jetstream {"
		echo "  store_dir: \"$dir/store\""
		[[ $2 == always ]] && echo "  sync_interval: always"
		echo "}"
	} >"$dir/nats.conf"
	"$NATS_SERVER" -c "$dir/nats.conf" >"$dir/server.log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	SERVER_PORT=$port
	for _ in $(seq 100); do
		grep -q "Server is ready" "$dir/server.log" && return
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir/server.log" >&2
	die "nats-server did not start"
}

# start_lance NAME: a single L1 node with its own data directory.
LANCE_HTTP=
start_lance() {
	local dir=$WORK/$1 port http
	port=$(free_port)
	http=$(free_port)
	mkdir -p "$dir"
	# shellcheck disable=SC2086 # LANCE_FLAGS is a list of flags
	"$LANCE" --listen "127.0.0.1:$port" --health "127.0.0.1:$http" --data-dir "$dir/data" $LANCE_FLAGS >"$dir/server.log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	SERVER_PORT=$port
	LANCE_HTTP=$http
	for _ in $(seq 200); do
		http_ok /health/ready "$http" 2>/dev/null && return
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir/server.log" >&2
	die "lance did not start"
}

# parse_nats FILE prints "msgs_per_sec p50_us p99_us" from nats bench
# output: the aggregated lines with several clients, the stats line with
# one. Numbers carry thousands separators; "P99.9" is not "P99".
parse_nats() {
	awk '
	function num(s) { gsub(/,/, "", s); return s + 0 }
	function rate(line,   r) {
		if (!match(line, /stats: [0-9][0-9,]* msgs\/sec/)) return ""
		r = substr(line, RSTART + 7, RLENGTH - 16)
		return num(r)
	}
	function pct(line, key,   s) {
		if (!match(line, key ":? [0-9][0-9.,]*us")) return ""
		s = substr(line, RSTART, RLENGTH)
		sub(/^P[0-9]+:? /, "", s); sub(/us$/, "", s)
		return num(s)
	}
	/aggregated stats:/ { agg_rate = rate($0) }
	/latencies per operation/ { agg_p50 = pct($0, "P50"); agg_p99 = pct($0, "P99") }
	/ stats: / && !/aggregated/ { one_rate = rate($0); one_p50 = pct($0, "P50"); one_p99 = pct($0, "P99") }
	END {
		if (agg_rate != "") print agg_rate, agg_p50, agg_p99
		else if (one_rate != "") print one_rate, one_p50, one_p99
		else print "", "", ""
	}' "$1"
}

# json_num FILE KEY prints the first (top-level) number KEY has in the
# one-line JSON lnc-bench writes; empty when it is null or missing.
json_num() {
	awk -v key="\"$2\":" '{
		i = index($0, key); if (i == 0) exit
		s = substr($0, i + length(key))
		if (match(s, /^-?[0-9][0-9.eE+-]*/)) print substr(s, RSTART, RLENGTH)
		exit
	}' "$1"
}

ROWS=()
FAILED=0

# row PROFILE SERVER MSGS_PER_SEC P50_US P99_US PEAK_RSS_BYTES
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); }

# nats_bench NAME OUT ARGS...: one nats bench run; on failure it shows
# the output and returns 1.
nats_bench() {
	local name=$1 out=$2
	shift 2
	if ! run_child timeout 900 "$NATS" "$@" >"$out" 2>&1; then
		tail -5 "$out" >&2
		log "$name: nats bench failed"
		return 1
	fi
}

# run_nats PROFILE CONNS DEPTH SYNC
run_nats() {
	local name="nats-$4-$1" out msgs pilot rate='' p50='' p99='' rss
	start_nats "$name" "$4"
	# --timeout: with sync_interval always a window of 256 messages is 256
	# fsyncs, which on a slow disk takes longer than the default 5 s.
	local args=(-s "nats://127.0.0.1:$SERVER_PORT" --timeout 120s bench js pub async "bench.$1" --create
		--storage file --purge --clients "$2" --batch "$3" --size "$MSG_SIZE" --no-progress)
	# The first run is the warm-up, and tells the rate from which the
	# message count of a DURATION-second run follows (nats bench has no
	# duration of its own without a throughput cap).
	pilot=$(( $2 * $3 * 4 > 4000 ? $2 * $3 * 4 : 4000 ))
	log "$name: warm-up, $pilot messages"
	if nats_bench "$name" "$WORK/$name/warmup.txt" "${args[@]}" --msgs "$pilot"; then
		read -r rate _ _ < <(parse_nats "$WORK/$name/warmup.txt")
		[[ -n $rate ]] || log "$name: could not read the nats bench output ($WORK/$name/warmup.txt)"
	fi
	if [[ -n $rate ]]; then
		msgs=$(awk -v r="$rate" -v d="$DURATION" 'BEGIN { n = int(r * d); print (n < 2000 ? 2000 : n) }')
		out=$WORK/$name/run.txt
		log "$name: $msgs messages (about ${DURATION}s at the warm-up rate)"
		rate=''
		if nats_bench "$name" "$out" "${args[@]}" --msgs "$msgs"; then
			read -r rate p50 p99 < <(parse_nats "$out")
			[[ -n $rate ]] || log "$name: could not read the nats bench output ($out)"
		fi
	fi
	rss=$(peak_rss "$SERVER_PID")
	stop_server "$SERVER_PID"
	row "$1" "nats js ($4 sync)" "$rate" "$p50" "$p99" "$rss"
	[[ -n $rate ]] || FAILED=1
}

# run_lance PROFILE CONNS PIPELINE RECORDS_PER_BATCH LABEL
run_lance() {
	local name="lance-$1-$3x$4" out batch rss rate p50 p99 err
	start_lance "$name"
	batch=$(( $4 == 1 ? 0 : $4 * (MSG_SIZE + 5) ))
	out=$WORK/$name/run.json
	log "$name: lnc-bench -c $2 -p $3 -b $batch"
	run_child "$LNC_BENCH" -e "127.0.0.1:$SERVER_PORT" -t bench -c "$2" -p "$3" -b "$batch" -s "$MSG_SIZE" \
		-d "$DURATION" -w "$WARMUP" --report-interval 0 --skip-latency-gate \
		--min-throughput-msgs-per-sec 0 --json >"$out" 2>"$WORK/$name/table.txt" || true
	err=$(grep -o '"error":"[^"]*"' "$out" || true)
	rate=$(json_num "$out" msgs_per_sec)
	p50=$(json_num "$out" p50_us)
	p99=$(json_num "$out" p99_us)
	if [[ -n $err || -z $rate ]]; then
		tail -15 "$WORK/$name/table.txt" >&2
		log "$name: lnc-bench failed ${err}"
		rate='' p50='' p99=''
		FAILED=1
	fi
	rss=$(peak_rss "$SERVER_PID")
	stop_server "$SERVER_PID"
	row "$1" "$5" "$rate" "$p50" "$p99" "$rss"
}

# --- runs ---------------------------------------------------------------

for prof in $PROFILES; do
	[[ $prof =~ ^([0-9]+)x([0-9]+)$ ]] || die "profile $prof is not CONNSxDEPTH"
	conns=${BASH_REMATCH[1]}
	depth=${BASH_REMATCH[2]}
	((conns > 0 && depth > 0)) || die "profile $prof needs positive numbers"
	run_nats "$prof" "$conns" "$depth" default
	run_nats "$prof" "$conns" "$depth" always
	pipe=$(( depth < LANCE_BATCHES ? depth : LANCE_BATCHES ))
	per=$(( depth / pipe ))
	run_lance "$prof" "$conns" "$pipe" "$per" "lance L1 ($pipe x $per records)"
	if [[ $LANCE_NATIVE == 1 ]] && ((depth > 1)); then
		per=$(( 65536 / (MSG_SIZE + 5) ))
		((per > 0)) || per=1
		run_lance "$prof" "$conns" "$depth" "$per" "lance L1 ($depth x $per records)*"
	fi
done

# --- report -------------------------------------------------------------

{
	echo
	printf 'Produce, %d-byte messages, %ss measured after a warm-up, loopback, %s cores, data on %s\n' \
		"$MSG_SIZE" "$DURATION" "$(nproc)" "$FSTYPE"
	[[ -z $LANCE_FLAGS ]] || printf 'lance flags: %s\n' "$LANCE_FLAGS"
	echo
	printf '%-8s %-34s %12s %9s %10s %10s %10s\n' profile server msg/s MiB/s p50 p99 "peak RSS"
	for r in "${ROWS[@]}"; do
		IFS='|' read -r prof server rate p50 p99 rss <<<"$r"
		awk -v prof="$prof" -v server="$server" -v rate="$rate" -v p50="$p50" -v p99="$p99" -v rss="$rss" -v size="$MSG_SIZE" '
		function lat(us) { if (us == "") return "-"; if (us < 1000) return sprintf("%.0fus", us); return sprintf("%.2fms", us / 1000) }
		BEGIN {
			if (rate == "") printf "%-8s %-34s %12s %9s %10s %10s %8.1fMiB\n", prof, server, "failed", "-", "-", "-", rss / 1048576
			else printf "%-8s %-34s %12.0f %9.1f %10s %10s %8.1fMiB\n", prof, server, rate, rate * size / 1048576, lat(p50), lat(p99), rss / 1048576
		}'
	done
	echo
	echo "lance / NATS (msg/s ratio; p99 ratio, below 1 is better for lance):"
	for prof in $PROFILES; do
		l='' nd='' na='' l99='' nd99='' na99=''
		for r in "${ROWS[@]}"; do
			IFS='|' read -r p server rate _ p99 _ <<<"$r"
			[[ $p == "$prof" ]] || continue
			case $server in
			"nats js (default sync)") nd=$rate; nd99=$p99 ;;
			"nats js (always sync)") na=$rate; na99=$p99 ;;
			"lance L1 ("*")") l=$rate; l99=$p99 ;; # not the starred row, which ends in ")*"
			esac
		done
		awk -v prof="$prof" -v l="$l" -v nd="$nd" -v na="$na" -v l99="$l99" -v nd99="$nd99" -v na99="$na99" '
		function r(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2fx", a / b) }
		BEGIN { printf "  %-8s vs default sync: %s msg/s, %s p99    vs sync always: %s msg/s, %s p99\n", prof, r(l, nd), r(l99, nd99), r(l, na), r(l99, na99) }'
	done
	echo
	echo "msg/s and MiB/s: messages acknowledged per second (MiB = 2^20 bytes of message values)."
	echo "NATS p50/p99: time to publish one async window of DEPTH messages and receive all its acks (nats bench)."
	echo "lance p50/p99: per record, from the producer accepting it to its durable ack (lnc-bench); lance acks only after fsync."
	echo "NATS default sync: acks before fsync (sync_interval 2 min); sync always: fsync on every write."
	echo "peak RSS: the server's VmHWM at the end of its run."
	if [[ $LANCE_NATIVE == 1 ]]; then
		echo "* lnc-bench's own --pipeline: DEPTH batches of 64 KiB in flight, far more messages than NATS has; not like for like."
	fi
}
if [[ $FAILED == 1 ]]; then
	log "some runs failed (see above); their rows say so"
	exit 1
fi
