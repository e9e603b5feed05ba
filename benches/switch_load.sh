#!/usr/bin/env bash
# Switch throughput and latency on this machine, with a bare relay measured
# in the same run as the reference (issue 4, point 10). Three processes on
# loopback: `cardswitch load` -> switch (or relay) -> `cardswitch issuer-sim`.
#
#   bash benches/switch_load.sh            # 10 s per measurement
#   SECONDS_PER_RUN=30 bash benches/switch_load.sh
#
# Prints the closed-loop figures for the switch and the relay, their ratio,
# the latency in open loop at 50,000/s (OPEN_LOOP_RATE; the relay's at the
# same rate is printed beside it, the machine's own tail), and whether each
# goal holds: >= 100,000 authorizations/s closed loop, p99 < 1 ms at half
# that rate (50,000/s), >= 50% of the relay's throughput; and the same
# switch with its journal on, which should keep >= 80% of the throughput.
# Also the CPU each request costs the switch process (user + system time
# from /proc, divided by the requests of the closed-loop run; issue 20's
# goal: at most 5 us), beside the relay's in the same run. With
# BASELINE=path/to/another/cardswitch, that build's switch is measured
# in the same run too (before / after a change).
# Exits non-zero when a request failed or one of the switch's four goals
# is not met (the journal's is reported only).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECONDS_PER_RUN:-10}
conns=${CONNECTIONS:-8}
inflight=${IN_FLIGHT:-8}
cargo build --release --quiet
bin=target/release/cardswitch
work=$(mktemp -d)
# shellcheck source=benches/load_lib.sh
source benches/load_lib.sh

issuer=$(start issuer issuer-sim --listen 127.0.0.1:0 --approve-limit 100000000)
base_config "$issuer" > "$work/switch.toml"
switch=$(RUST_LOG=warn start switch run --config "$work/switch.toml")
# The same switch with its journal on (issue 5: the journal costs < 20%).
{ cat "$work/switch.toml"; printf '[journal]\npath = "%s/journal.db"\n' "$work"; } > "$work/journaled.toml"
export CARDSWITCH_JOURNAL_KEY="bench:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
journaled=$(RUST_LOG=warn start journaled run --config "$work/journaled.toml")
relay=$(start relay relay --target "$issuer")
if [ -n "${BASELINE:-}" ]; then
    baseline=$(RUST_LOG=warn bin=$BASELINE start baseline run --config "$work/switch.toml")
fi

# cpu NAME: the process's user + system time so far, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$(cat "$work/$1.pid")/stat"; }
# per_request NAME BEFORE REPORT: microseconds of CPU per request sent.
per_request() {
    local ticks=$(( $(cpu "$1") - $2 ))
    local sent; sent=$(echo "$3" | field 'd["sent"]')
    python3 -c "print(f'{$ticks * 1e6 / $(getconf CLK_TCK) / max($sent, 1):.2f}')"
}

before=$(cpu switch); sw=$(load "$switch"); sw_cpu=$(per_request switch "$before" "$sw")
before=$(cpu relay); rl=$(load "$relay"); rl_cpu=$(per_request relay "$before" "$rl")
if [ -n "${BASELINE:-}" ]; then
    before=$(cpu baseline); bl=$(load "$baseline"); bl_cpu=$(per_request baseline "$before" "$bl")
    bl_tps=$(echo "$bl" | field 'round(d["throughput_rps"])')
fi
sw_tps=$(echo "$sw" | field 'round(d["throughput_rps"])')
rl_tps=$(echo "$rl" | field 'round(d["throughput_rps"])')
jn=$(load "$journaled")
jn_tps=$(echo "$jn" | field 'round(d["throughput_rps"])')
jn_p99=$(echo "$jn" | field 'd["latency_us"]["p99"]')
jn_ratio=$(python3 -c "print(f'{$jn_tps/$sw_tps:.2f}')")
# The goal's rate: half of the 100,000/s goal, whatever this run reached.
open_rate=${OPEN_LOOP_RATE:-50000}
paced=$(load "$switch" --rate "$open_rate")
# The reference for that tail: the bare relay at the same rate, same run.
relay_paced=$(load "$relay" --rate "$open_rate")
ratio=$(python3 -c "print(f'{$sw_tps/$rl_tps:.2f}')")
open_p99=$(echo "$paced" | field 'd["latency_us"]["p99"]')
open_max=$(echo "$paced" | field 'd["latency_us"]["max"]')
relay_open_p99=$(echo "$relay_paced" | field 'd["latency_us"]["p99"]')
relay_open_max=$(echo "$relay_paced" | field 'd["latency_us"]["max"]')
sw_p99=$(echo "$sw" | field 'd["latency_us"]["p99"]')
bad=$(echo "$sw" | field 'd["mismatched"] + d["errors"] + d["timed_out"]')

printf 'switch closed loop (%sx%s): %s req/s, p99 %s us\n' "$conns" "$inflight" "$sw_tps" "$sw_p99"
printf 'relay  closed loop (%sx%s): %s req/s\n' "$conns" "$inflight" "$rl_tps"
printf 'switch / relay: %s\n' "$ratio"
printf 'CPU per request: switch %s us, relay %s us\n' "$sw_cpu" "$rl_cpu"
if [ -n "${BASELINE:-}" ]; then
    printf 'baseline switch (%s): %s req/s, %s us CPU per request, baseline / relay %s\n' \
        "$BASELINE" "$bl_tps" "$bl_cpu" "$(python3 -c "print(f'{$bl_tps/$rl_tps:.2f}')")"
fi
printf 'switch with journal (%sx%s): %s req/s, p99 %s us; journal on / off: %s\n' "$conns" "$inflight" "$jn_tps" "$jn_p99" "$jn_ratio"
printf 'switch open loop at %s req/s: p99 %s us, max %s us\n' "$open_rate" "$open_p99" "$open_max"
printf 'relay  open loop at %s req/s: p99 %s us, max %s us\n' "$open_rate" "$relay_open_p99" "$relay_open_max"
verdict() { if [ "$1" = 1 ]; then echo "met"; else echo "NOT met"; fi; }
closed_ok=$(( sw_tps >= 100000 ))
tail_ok=$(( open_p99 < 1000 ))
relay_ok=$(python3 -c "print(int($sw_tps >= 0.5 * $rl_tps))")
echo "goal >= 100000 req/s closed loop: $(verdict "$closed_ok")"
echo "goal p99 < 1 ms at $open_rate/s: $(verdict "$tail_ok")"
echo "goal >= 0.5 of the relay: $(verdict "$relay_ok")"
cpu_ok=$(python3 -c "print(int($sw_cpu <= 5.0))")
echo "goal <= 5 us of CPU per request: $(verdict "$cpu_ok")"
# Reported only: issue 5's goal, out of reach with a synchronous journal here.
echo "goal journal costs < 20% of throughput: $(verdict $(python3 -c "print(int($jn_tps >= 0.8 * $sw_tps))"))"
[ "$bad" = 0 ] || { echo "switch run had $bad failed requests" >&2; exit 1; }
# The switch's goals (issue 4, point 10) fail the run when one is not met.
[ "$closed_ok$tail_ok$relay_ok$cpu_ok" = 1111 ] || { echo "a switch goal is not met" >&2; exit 1; }
