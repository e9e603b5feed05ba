#!/usr/bin/env bash
# The security module's cost to the switch (issue 21), in one run: the
# same switch, the same DUKPT terminals' traffic (PIN blocks in DE52, the
# KSN in DE53, MACs), once with PIN translation and MACs off (DE52
# passes untouched, no MAC checked or made) and once on against
# `cardswitch hsm-sim` (every PIN block translated BDK -> ZPK with G0,
# the terminal's MAC verified with M8, the request to the issuer and the
# reply signed with M6, the issuer's MAC verified with M8), at 8 x 8
# closed loop. The issuer simulator checks every PIN under its ZPK and
# every MAC, so an approval proves the translation.
#
#   bash benches/hsm_load.sh                  # 10 s per measurement
#   SECONDS_PER_RUN=30 bash benches/hsm_load.sh
#
# Goal, checked (non-zero exit when missed): with the HSM, at least 50% of
# the throughput without it. Reported: HSM commands (round trips) per
# request, from the switch's metrics; and, beside, PIN translation alone
# (no MACs checked or made: one HSM command a request).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECONDS_PER_RUN:-10}
cargo build --release --quiet
bin=target/release/cardswitch
work=$(mktemp -d)
# shellcheck source=benches/load_lib.sh
source benches/load_lib.sh

BDK=0123456789ABCDEFFEDCBA9876543210
ZPK=89ABCDEF01234567FEDCBA9876543210
TAK=0123456789ABCDEF0123456789ABCDEF
ZAK=FEDCBA98765432100123456789ABCDEF
key() { # ROLE TYPE CLEAR: a key table for the configuration
    read -r k c < <("$bin" hsm-sim form-key --type "$2" --component "$3")
    printf '{ role = "%s", key = "%s", check_value = "%s" }' "$1" "$k" "$c"
}

hsm=$(RUST_LOG=warn start hsm hsm-sim --listen 127.0.0.1:0)
# Two issuers on the same simulator flags: one checks MACs and signs.
plain_issuer=$(RUST_LOG=warn start plain_issuer issuer-sim --listen 127.0.0.1:0 --spec iso93-ascii \
    --approve-limit 100000000 --no-expiry)
secure_issuer=$(RUST_LOG=warn start secure_issuer issuer-sim --listen 127.0.0.1:0 --spec iso93-ascii \
    --approve-limit 100000000 --no-expiry --pin-key "$ZPK" --mac-key "$ZAK")
# PIN translation alone (the terminals still sign; nobody checks): one
# HSM round trip a request.
pin_issuer=$(RUST_LOG=warn start pin_issuer issuer-sim --listen 127.0.0.1:0 --spec iso93-ascii \
    --approve-limit 100000000 --no-expiry --pin-key "$ZPK")
config() { # ISSUER METRICS [SECURITY [MACS]]: the bench switch, 1993 dialect
    cat <<CONF
[switch]
institution_id = "99000000001"
metrics = "$2"
CONF
    if [ -n "${3:-}" ]; then printf '[hsm]\naddress = "%s"\nconnections = 4\npipeline_depth = 64\n' "$hsm"; fi
    cat <<CONF
[[acquirer]]
name = "atm"
listen = "127.0.0.1:0"
spec = "iso93-ascii"
framing = { length = "binary2" }
in_flight_max = 1024
CONF
    if [ -n "${3:-}" ]; then
        printf '[acquirer.security]\npin_key = %s\n' "$(key bdk BDK $BDK)"
        if [ -n "${4:-}" ]; then printf 'mac_key = %s\n' "$(key tak TAK $TAK)"; fi
    fi
    cat <<CONF
[[issuer]]
name = "bank"
addresses = ["$1"]
spec = "iso93-ascii"
framing = { length = "binary2" }
connections = 1
CONF
    if [ -n "${3:-}" ]; then
        printf '[issuer.security]\npin_key = %s\n' "$(key zpk ZPK $ZPK)"
        if [ -n "${4:-}" ]; then printf 'mac_key = %s\n' "$(key zak ZAK $ZAK)"; fi
    fi
    printf '[default_route]\nissuer = "bank"\n'
}
plain_metrics=$(free_addr)
secure_metrics=$(free_addr)
pin_metrics=$(free_addr)
config "$plain_issuer" "$plain_metrics" > "$work/plain.toml"
config "$secure_issuer" "$secure_metrics" on macs > "$work/secure.toml"
config "$pin_issuer" "$pin_metrics" on > "$work/pin.toml"
plain=$(RUST_LOG=warn start plain run --config "$work/plain.toml")
secure=$(RUST_LOG=warn start secure run --config "$work/secure.toml")
pin_only=$(RUST_LOG=warn start pin_only run --config "$work/pin.toml")

terminals=(--spec iso93-ascii --dukpt-bdk "$BDK" --mac-key "$TAK")
# run TARGET: throughput, p50 µs, approved, sent, failed of one run.
run() {
    load "$1" "${terminals[@]}" | field '" ".join(str(x) for x in (round(d["throughput_rps"]), d["latency_us"]["p50"], d["approved"], d["sent"], d["mismatched"] + d["errors"] + d["timed_out"]))'
}
metric() { # ADDR NAME: the sum of a metric's samples
    curl -s "http://$1/metrics" | awk -v n="$2" '$1 ~ "^"n"($|\\{)" { s += $2 } END { print s + 0 }'
}

# commands METRICS TARGET: "rps p50 ok sent bad commands-per-request" of one run.
commands() {
    local before after
    before=$(metric "$1" cardswitch_hsm_commands_total)
    read -r rps p50 ok sent bad < <(run "$2")
    after=$(metric "$1" cardswitch_hsm_commands_total)
    echo "$rps $p50 $ok $sent $bad $(python3 -c "print(f'{($after - $before)/max($sent,1):.2f}')")"
}

read -r p_rps p_p50 p_ok p_sent p_bad < <(run "$plain")
read -r s_rps s_p50 s_ok s_sent s_bad per_request < <(commands "$secure_metrics" "$secure")
read -r n_rps n_p50 n_ok n_sent n_bad n_per_request < <(commands "$pin_metrics" "$pin_only")

ratio=$(python3 -c "print(f'{$s_rps/$p_rps:.2f}')")
n_ratio=$(python3 -c "print(f'{$n_rps/$p_rps:.2f}')")
echo "8 x 8 closed loop, ${secs} s each, DUKPT terminals with MACs (iso93-ascii)"
echo "  without PIN translation and MACs: ${p_rps} req/s, p50 ${p_p50} us (${p_ok}/${p_sent} approved)"
echo "  with them against hsm-sim:        ${s_rps} req/s, p50 ${s_p50} us (${s_ok}/${s_sent} approved)"
echo "  throughput ratio ${ratio} (goal >= 0.50); HSM commands per request ${per_request}"
echo "  PIN translation alone:            ${n_rps} req/s, p50 ${n_p50} us (${n_ok}/${n_sent} approved), ratio ${n_ratio}, HSM commands per request ${n_per_request}"
fail=0
if [ "$p_bad" != 0 ] || [ "$s_bad" != 0 ] || [ "$n_bad" != 0 ]; then
    echo "FAILED: requests failed ($p_bad, $s_bad, $n_bad)"; fail=1
fi
if [ "$s_ok" != "$s_sent" ] || [ "$n_ok" != "$n_sent" ]; then
    echo "FAILED: not every secured request was approved"; fail=1
fi
if python3 -c "import sys; sys.exit(0 if $s_rps >= 0.5 * $p_rps else 1)"; then
    echo "goal met"
else
    echo "goal NOT met"; fail=1
fi
exit $fail
