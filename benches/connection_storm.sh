#!/usr/bin/env bash
# A reconnect storm (issue 19, point 21): 10,000 terminal connections, each
# sending one request every 2 s with one in flight (5,000/s open loop), through
# the switch (`cardswitch run`) to `cardswitch issuer-sim`, and the same load
# sent to issuer-sim directly in the same run, as the reference. Everything on
# loopback; every process is started and stopped here.
#
#   bash benches/connection_storm.sh
#   CONNECTIONS=2000 SECONDS_PER_RUN=10 bash benches/connection_storm.sh
#
# Prints for both paths the answered/s, time-outs, p50 and p99; and the
# switch's memory per idle connection: VmRSS (/proc/PID/status) of the switch
# holding every connection idle after the run, minus its VmRSS before any
# connection, divided by the connections. Exits non-zero when the goal is
# missed: 0 time-outs and p99 at most 10 ms through the switch (and no
# failed request or connection).
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${CONNECTIONS:-10000}
interval_s=${INTERVAL_S:-2}
secs=${SECONDS_PER_RUN:-20}
# The load generator opens this many connections per second (its default).
connect_rate=${CONNECT_RATE:-2000}
p99_goal_us=${P99_GOAL_US:-10000}
rate=$(python3 -c "print($conns / $interval_s)")

# One fd per connection in the switch, the issuer simulator and the load
# generator, and some to spare. Root may raise the hard limit.
need=$((conns + 1024))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt "$need" ]; then
    echo "need $need open files, the limit is $(ulimit -n)" >&2
    exit 2
fi

cargo build --release --quiet
bin=target/release/cardswitch
work=$(mktemp -d)
# shellcheck source=benches/load_lib.sh
source benches/load_lib.sh
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

issuer=$(start issuer issuer-sim --listen 127.0.0.1:0 --approve-limit 100000000 \
    --backlog 8192 --connections-max $((conns + 64)))

# Keys added to the [[acquirer]] section, one per line: every terminal
# comes from 127.0.0.1, so the per-peer limit must admit them all.
acquirer_extra=(
    "connections_max = $((conns + 64))"
    "in_flight_max = 8"
    "listen_backlog = 8192"
    "connections_per_peer_max = $((conns + 64))"
)
{
    cat <<CONF
[switch]
institution_id = "99000000001"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = { length = "binary2" }
CONF
    printf '%s\n' "${acquirer_extra[@]}"
    cat <<CONF
[[issuer]]
name = "issuer"
addresses = ["$issuer"]
spec = "iso87-ascii"
framing = { length = "binary2" }
connections = 1
in_flight_max = 4096
timeout_ms = 5000
[[route]]
bins = ["476173"]
issuer = "issuer"
CONF
} > "$work/switch.toml"
switch=$(RUST_LOG=warn start switch run --config "$work/switch.toml")
switch_pid=$(cat "$work/switch.pid")
rss_none=$(rss_kib "$switch_pid")

# load NAME TARGET EXTRA...: one open-loop run, its JSON report in NAME.json.
load() {
    local name=$1 target=$2; shift 2
    timeout $((secs + conns / connect_rate + 120)) "$bin" load --target "$target" \
        --connections "$conns" --in-flight 1 --rate "$rate" --duration-s "$secs" \
        --connect-rate "$connect_rate" --timeout-ms 5000 \
        --bins 476173:1 --amount-max 5000 --json "$@" \
        > "$work/$name.json" 2> "$work/$name.log"
}

# Through the switch; the connections are then held idle for the memory figure.
load switched "$switch" --hold-s 3 &
load_pid=$!
for _ in $(seq $((10 * (secs + conns / connect_rate + 60)))); do
    grep -q "holding" "$work/switched.log" 2>/dev/null && break
    kill -0 "$load_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "holding" "$work/switched.log" || { echo "load did not finish: $(cat "$work/switched.log")" >&2; exit 1; }
rss_idle=$(rss_kib "$switch_pid")
wait "$load_pid" || true
# The same load straight to the issuer simulator.
load direct "$issuer" || true

field() { python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print($2)" "$1"; }
summary() { # NAME LABEL
    local f="$work/$1.json"
    [ -s "$f" ] || { echo "$2: no report: $(tail -3 "$work/$1.log")" >&2; return; }
    printf '%-16s %6s answered/s, %s time-outs, p50 %s ms, p99 %s ms (%s connections, %s errors, %s skipped)\n' "$2" \
        "$(field "$f" 'round(d["throughput_rps"])')" "$(field "$f" 'd["timed_out"]')" \
        "$(field "$f" 'round(d["latency_us"]["p50"] / 1000, 2)')" \
        "$(field "$f" 'round(d["latency_us"]["p99"] / 1000, 2)')" \
        "$(field "$f" 'd["connections"]')" "$(field "$f" 'd["errors"]')" "$(field "$f" 'd["skipped"]')"
}
echo "$conns connections, one request every $interval_s s each ($rate/s open loop), $secs s"
summary switched "through the switch"
summary direct "issuer-sim direct"
per_conn=$(python3 -c "print(round(($rss_idle - $rss_none) / $conns, 1))")
echo "switch VmRSS: $rss_none KiB with no connection, $rss_idle KiB with $conns idle: $per_conn KiB per idle connection"

f="$work/switched.json"
[ -s "$f" ] || { echo "goal NOT met: no report through the switch" >&2; exit 1; }
timed_out=$(field "$f" 'd["timed_out"]')
p99=$(field "$f" 'd["latency_us"]["p99"]')
bad=$(field "$f" 'd["errors"] + d["mismatched"] + d["unmatched"]')
established=$(field "$f" 'd["connections"]')
if [ "$timed_out" = 0 ] && [ "$p99" -le "$p99_goal_us" ] && [ "$bad" = 0 ] && [ "$established" = "$conns" ]; then
    echo "goal 0 time-outs and p99 <= $((p99_goal_us / 1000)) ms through the switch: met"
else
    echo "goal 0 time-outs and p99 <= $((p99_goal_us / 1000)) ms through the switch: NOT met" >&2
    exit 1
fi
