# Shared by the load scripts (sourced): processes started in the
# background and stopped at exit, the bench's switch configuration, and
# the load generator. Expects $bin, $work and $secs to be set.

# `start` runs in a command substitution (a subshell): it leaves each
# process id in a file, which the trap reads.
cleanup() {
    for f in "$work"/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# free_addr: a loopback address with a port nothing listens on now (the
# kernel's pick; a random port could be one a connection already holds).
free_addr() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print("127.0.0.1:%d" % s.getsockname()[1])'
}

# start NAME ARGS...: runs the binary in the background, echoes its address.
start() {
    local name=$1; shift
    ${bin} "$@" > "$work/$name.out" 2> "$work/$name.err" &
    echo $! > "$work/$name.pid"
    for _ in $(seq 100); do
        if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
            sed -n 's/.*listening on //p' "$work/$name.out" | head -1
            return
        fi
        sleep 0.05
    done
    echo "$name did not start: $(cat "$work/$name.err")" >&2
    exit 1
}

# base_config ISSUER: one acquirer, one issuer, every BIN routed to it.
base_config() {
    cat <<CONF
[switch]
institution_id = "99000000001"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = { length = "binary2" }
in_flight_max = 1024
[[issuer]]
name = "issuer"
addresses = ["$1"]
spec = "iso87-ascii"
framing = { length = "binary2" }
connections = 1
[[route]]
bins = ["476173"]
issuer = "issuer"
CONF
}

# load TARGET EXTRA...: one run of the load generator, its JSON report.
load() {
    local target=$1; shift
    "$bin" load --target "$target" --connections "${CONNECTIONS:-8}" --in-flight "${IN_FLIGHT:-8}" \
        --duration-s "$secs" --bins 476173:1 --amount-max 5000 --json "$@"
}

# field EXPR: EXPR over the last JSON line on stdin (as `d`).
field() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print($1)"; }
