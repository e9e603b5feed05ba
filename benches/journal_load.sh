#!/usr/bin/env bash
# The journal's cost to the switch (issue 22), all measured in one run:
# the same switch without a journal, with the journal log as its
# durability point (the default), and durable in SQLite (the earlier
# path, for reference), beside one bare fdatasync on the same disk.
#
#   bash benches/journal_load.sh              # 10 s per measurement
#   SECONDS_PER_RUN=30 bash benches/journal_load.sh
#
# Goals, checked (non-zero exit when one is missed):
# - 8 x 64 closed loop (the cores are the limit): the journaled switch
#   keeps >= 80% of the throughput;
# - 8 x 8 closed loop (each request's wait for its sync is the limit):
#   the median added latency is at most one bare fdatasync + 0.2 ms (the
#   throughput ratio is reported);
# - open loop at half the closed-loop rate: the p99 added latency is at
#   most one bare fdatasync + 0.5 ms.
# - SQLite within a second of the log: the feeder's largest lag, at the
#   run's fastest record rate, under a second.
# Reported: the SQLite feeder's CPU per record (from the journaled
# switch's log line at its shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECONDS_PER_RUN:-10}
cargo build --release --quiet
bin=target/release/cardswitch
work=$(mktemp -d)
# shellcheck source=benches/load_lib.sh
source benches/load_lib.sh

issuer=$(start issuer issuer-sim --listen 127.0.0.1:0 --approve-limit 100000000)
base_config "$issuer" > "$work/none.toml"
{ base_config "$issuer"; printf '[journal]\npath = "%s/log.db"\n' "$work"; } > "$work/log.toml"
{ base_config "$issuer"; printf '[journal]\npath = "%s/sqlite.db"\ndurability = "sqlite"\n' "$work"; } > "$work/sqlite.toml"
export CARDSWITCH_JOURNAL_KEY="bench:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
none=$(RUST_LOG=warn start none run --config "$work/none.toml")
logged=$(RUST_LOG=warn,cardswitch::journal::log::journal=info start logged run --config "$work/log.toml")
sqlite=$(RUST_LOG=warn start sqlite run --config "$work/sqlite.toml")

# One bare fdatasync: a 4 KiB overwrite of a written file, synced, on the
# journal's disk; median and p99 of 400, microseconds.
read -r sync_p50 sync_p99 < <(python3 - "$work" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fdatasync.probe")
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"\0" * (4096 * 400)); os.fsync(fd)
times = []
for i in range(400):
    os.pwrite(fd, b"x" * 4096, 4096 * i)
    t = time.perf_counter(); os.fdatasync(fd); times.append((time.perf_counter() - t) * 1e6)
times.sort()
print(round(times[len(times) // 2]), round(times[int(len(times) * 0.99)]))
PY
)

# closed TARGET IN_FLIGHT: throughput, p50, failed requests and requests
# sent of one closed-loop run.
closed() {
    local out; out=$(IN_FLIGHT=$2 load "$1")
    echo "$out" | field '" ".join(str(x) for x in (round(d["throughput_rps"]), d["latency_us"]["p50"], d["mismatched"] + d["errors"] + d["timed_out"], d["sent"]))'
}
read -r none64 _ bad1 _ < <(closed "$none" 64)
read -r log64 _ bad2 sent1 < <(closed "$logged" 64)
read -r sql64 _ bad3 _ < <(closed "$sqlite" 64)
read -r none8 none8_p50 bad4 _ < <(closed "$none" 8)
read -r log8 log8_p50 bad5 sent2 < <(closed "$logged" 8)
read -r sql8 sql8_p50 bad6 _ < <(closed "$sqlite" 8)
rate=$(( log64 / 2 ))
open() {
    IN_FLIGHT=64 load "$1" --rate "$rate" | field '" ".join(str(x) for x in (d["latency_us"]["p99"], d["mismatched"] + d["errors"] + d["timed_out"], d["sent"]))'
}
read -r none_open_p99 bad7 _ < <(open "$none")
read -r log_open_p99 bad8 sent3 < <(open "$logged")

# The journaled switch's feeder reports at shutdown.
kill -TERM "$(cat "$work/logged.pid")"
for _ in $(seq 200); do kill -0 "$(cat "$work/logged.pid")" 2>/dev/null || break; sleep 0.05; done
feed_line=$(grep -h "journal feed to SQLite stopped" "$work/logged.err" "$work/logged.out" | tail -1 || true)
feed() { echo "$feed_line" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
applied=$(feed applied); feed_cpu=$(feed cpu_us_per_record); lag_max=$(feed lag_max)
[ -n "$applied" ] || { echo "the journaled switch did not report its feed: $feed_line" >&2; exit 1; }
records_per_request=$(python3 -c "print(f'{$applied / ($sent1 + $sent2 + $sent3):.2f}')")
# The largest lag in time: at the fastest record rate of the run.
lag_s=$(python3 -c "print(f'{$lag_max / ($records_per_request * $log64):.3f}')")

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
printf 'bare fdatasync (4 KiB overwrite): p50 %s us, p99 %s us\n' "$sync_p50" "$sync_p99"
printf '8 x 64 closed loop: no journal %s req/s, journal log %s (%s), durable in SQLite %s (%s)\n' \
    "$none64" "$log64" "$(ratio "$log64" "$none64")" "$sql64" "$(ratio "$sql64" "$none64")"
printf '8 x 8 closed loop: no journal %s req/s p50 %s us, journal log %s (%s) p50 %s us, durable in SQLite %s (%s) p50 %s us\n' \
    "$none8" "$none8_p50" "$log8" "$(ratio "$log8" "$none8")" "$log8_p50" "$sql8" "$(ratio "$sql8" "$none8")" "$sql8_p50"
added50=$(( log8_p50 - none8_p50 ))
added99=$(( log_open_p99 - none_open_p99 ))
printf '8 x 8 median added latency: %s us (goal <= %s us)\n' "$added50" "$(( sync_p50 + 200 ))"
printf 'open loop at %s req/s: p99 no journal %s us, journal log %s us, added %s us (goal <= %s us)\n' \
    "$rate" "$none_open_p99" "$log_open_p99" "$added99" "$(( sync_p50 + 500 ))"
printf 'SQLite feeder: %s records (%s a request), %s us of CPU a record (%s a request), largest lag %s records (%s s at 8 x 64)\n' \
    "$applied" "$records_per_request" "$feed_cpu" "$(python3 -c "print(f'{$feed_cpu * $records_per_request:.1f}')")" "$lag_max" "$lag_s"

verdict() { if [ "$1" = 1 ]; then echo "met"; else echo "NOT met"; fi; }
share_ok=$(python3 -c "print(int($log64 >= 0.8 * $none64))")
median_ok=$(( added50 <= sync_p50 + 200 ))
tail_ok=$(( added99 <= sync_p50 + 500 ))
lag_ok=$(python3 -c "print(int($lag_s < 1.0))")
echo "goal journal log >= 80% of the throughput at 8 x 64: $(verdict "$share_ok")"
echo "goal median added latency <= one fdatasync + 0.2 ms at 8 x 8: $(verdict "$median_ok")"
echo "goal p99 added latency <= one fdatasync + 0.5 ms in open loop: $(verdict "$tail_ok")"
echo "goal SQLite within a second of the log (largest lag): $(verdict "$lag_ok")"
bad=$(( bad1 + bad2 + bad3 + bad4 + bad5 + bad6 + bad7 + bad8 ))
[ "$bad" = 0 ] || { echo "$bad requests failed" >&2; exit 1; }
[ "$share_ok$median_ok$tail_ok$lag_ok" = 1111 ] || { echo "a journal goal is not met" >&2; exit 1; }
