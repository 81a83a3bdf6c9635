#!/usr/bin/env bash
# Scrape serving: requests per second for /metrics under wrk, the exporter against nginx serving
# the same bytes as a static file, with the same client settings in the same run.
#
#   benches/scrape.sh                          # four pairs of 10 s runs
#   PAIRS=8 DURATION=20s benches/scrape.sh     # more and longer runs
#   NGINX_SENDFILE=off benches/scrape.sh       # nginx copies the file as the exporter copies its body
#   EXPORTER_BIN=/path/to/binary benches/scrape.sh   # that binary, without building
#
# Needs wrk, nginx, curl, GNU time (Debian: apt-get install wrk nginx-light curl time) and python3
# (to find free ports and sum up). Everything listens on 127.0.0.1 only and runs for a bounded time:
#
# 1. builds the release binary and starts `cloudconnexa_exporter --demo` on a free loopback port;
#    waits until /readyz answers 200 and session metrics exist;
# 2. serves a copy of /metrics with nginx on another loopback port, from a minimal configuration
#    of its own: as many worker processes as the exporter has worker threads (one per core,
#    Tokio's default), access log off, keep-alive on and not limited in requests per connection
#    (wrk keeps its connections; the exporter never closes them either), sendfile;
# 3. runs `wrk -t2 -c32 -d10s` against both, interleaved (nginx, exporter, nginx, exporter, ...;
#    four pairs, since single runs vary by a tenth on a shared machine), and prints each rate, the
#    ratio of the exporter's total to nginx's (target: at least 0.8), and each server's CPU time
#    per request (from /proc/PID/stat, nginx's master and workers together), which moves less than
#    the rate. Before each pair it waits (at most QUIET_WAIT=120 seconds) until the machine is
#    idle, and for each run it prints how many cores other work used meanwhile: other tenants'
#    builds and tests on a shared machine cost the exporter more than nginx;
# 4. runs `wrk -t2 -c512` against the exporter and checks that there are no socket errors and
#    no non-2xx answers.
#
# The same bytes: the exporter's body changes when a poll cycle publishes (every 15 s in the demo;
# new label sets make it grow by a few percent over a run) and its self-metrics are re-encoded at
# most once a second (a few digits). So nginx's copy is taken again just before each nginx run, and
# the size each server sends is printed with every run. wrk sends no Accept-Encoding, so both
# answer with the plain text.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
NGINX_SENDFILE=${NGINX_SENDFILE:-on}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
MANY_CONNECTIONS=${MANY_CONNECTIONS:-512}
PAIRS=${PAIRS:-4}

for tool in wrk nginx curl python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "scrape.sh: $tool is needed" >&2; exit 1; }
done

work=$(mktemp -d /tmp/cloudconnexa-scrape.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # wait_for SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "scrape.sh: timed out waiting for: $*" >&2; return 1; }
        sleep 0.2
    done
}

if [[ -n ${EXPORTER_BIN:-} ]]; then
    bin=$EXPORTER_BIN
else
    echo "== build"
    cargo build --release --quiet
    bin=$PWD/target/release/cloudconnexa_exporter
fi

echo "== exporter"
"$bin" --demo --web.listen-address 127.0.0.1:0 >"$work/exporter.log" 2>&1 &
pids+=($!)
exporter_pid=$!
wait_for 30 grep -q 'msg="serving metrics"' "$work/exporter.log"
exporter_port=$(grep -o 'msg="serving metrics" address=127.0.0.1:[0-9]*' "$work/exporter.log" | head -1 | cut -d: -f2)
exporter="http://127.0.0.1:$exporter_port/metrics"
wait_for 60 curl -fsS "http://127.0.0.1:$exporter_port/readyz"
# The body is read whole before grep looks at it: `curl | grep -q` would let grep exit at the
# first match and curl die of a broken pipe on a large body, failing the check under pipefail.
has_sessions() {
    local body
    body=$(curl -fsS "$exporter") || return 1
    grep -q '^cloudconnexa_sessions_active{' <<<"$body"
}
wait_for 60 has_sessions
workers=$(cat /proc/"$exporter_pid"/task/*/comm | grep -c '^tokio-runtime-w' || true)
[[ $workers -gt 0 ]] || workers=$(nproc)
echo "exporter pid $exporter_pid on port $exporter_port, $workers Tokio worker threads"

echo "== nginx"
mkdir -p "$work/www" "$work/nginx"
# The file nginx serves: the exporter's current body (taken again before each nginx run, since the
# demo's body grows or shrinks a little when a poll cycle brings new label sets).
snapshot() { curl -fsS "$exporter" -o "$work/www/metrics.new" && mv "$work/www/metrics.new" "$work/www/metrics"; }
snapshot
nginx_port=$(free_port)
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes $workers;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile $NGINX_SENDFILE;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
        location = /metrics { default_type "text/plain; version=0.0.4; charset=utf-8"; }
    }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>"$work/nginx/stderr" &
pids+=($!)
nginx_pid=$!
nginx="http://127.0.0.1:$nginx_port/metrics"
wait_for 10 curl -fsS "$nginx"
size() { curl -fsS -o /dev/null -w '%{size_download}' "$1"; }
echo "nginx on port $nginx_port, $workers worker processes, sendfile $NGINX_SENDFILE"
echo "bytes served: exporter $(size "$exporter"), nginx $(size "$nginx")"

rate() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
server_pids() { # the processes of the server a run named $1 measures
    if [[ $1 == nginx* ]]; then echo "$nginx_pid" $(pgrep -P "$nginx_pid"); else echo "$exporter_pid"; fi
}
cpu_ticks() { # user plus system CPU of processes $@ (every thread), in clock ticks
    local total=0 pid fields
    for pid in "$@"; do
        read -ra fields <<<"$(sed 's/.*) //' "/proc/$pid/stat")"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

busy_ticks() { # CPU ticks the whole machine has spent busy so far (user, nice, system, irq, softirq)
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat
}
hz=$(getconf CLK_TCK)

wait_quiet() { # waits (at most QUIET_WAIT seconds) until other work leaves the machine idle
    local deadline=$((SECONDS + ${QUIET_WAIT:-120})) a b
    while ((SECONDS < deadline)); do
        a=$(busy_ticks); sleep 2; b=$(busy_ticks)
        # Under a tenth of one core over 2 s: our own idle servers and nothing else.
        ((b - a < hz / 5)) && return 0
    done
    echo "warning: the machine stayed busy with other work; the rates below are disturbed"
}

run() { # run NAME URL CONNECTIONS: one wrk run, its output kept in $work/NAME.txt
    [[ $1 != nginx* ]] || snapshot
    local bytes before after busy_before busy_after requests wrk_ticks
    bytes=$(size "$2")
    before=$(cpu_ticks $(server_pids "$1"))
    busy_before=$(busy_ticks)
    /usr/bin/time -f '%U %S' -o "$work/$1.wrk-cpu" \
        wrk -t"$THREADS" -c"$3" -d"$DURATION" --latency "$2" >"$work/$1.txt"
    busy_after=$(busy_ticks)
    after=$(cpu_ticks $(server_pids "$1"))
    requests=$(awk '/requests in/ {print $1}' "$work/$1.txt")
    wrk_ticks=$(awk -v hz="$hz" '{printf "%d", ($1 + $2) * hz}' "$work/$1.wrk-cpu")
    awk -v t="$((after - before))" -v hz="$hz" -v n="$requests" \
        'BEGIN { printf "%.1f\n", t * 1e6 / hz / n }' >"$work/$1.cpu"
    # What the rest of the machine did meanwhile, in cores: other tenants' work disturbs a run.
    local others
    others=$(awk -v t="$((busy_after - busy_before - (after - before) - wrk_ticks))" -v hz="$hz" \
        -v s="${DURATION%s}" 'BEGIN { v = t / hz / s; printf "%.2f", (v < 0 ? 0 : v) }')
    printf '%-12s %10s requests/s  %6s bytes  %5s us CPU/request  others %s cores  (latency p50 %s, p99 %s)\n' \
        "$1" "$(rate "$work/$1.txt")" "$bytes" "$(cat "$work/$1.cpu")" "$others" \
        "$(awk '$1 == "50%" {print $2}' "$work/$1.txt")" "$(awk '$1 == "99%" {print $2}' "$work/$1.txt")"
    if grep -qE 'Socket errors|Non-2xx' "$work/$1.txt"; then grep -E 'Socket errors|Non-2xx' "$work/$1.txt"; fi
}

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION, interleaved"
for i in $(seq "$PAIRS"); do
    wait_quiet
    run "nginx-$i" "$nginx" "$CONNECTIONS"
    run "exporter-$i" "$exporter" "$CONNECTIONS"
done
echo "bytes served afterwards: exporter $(size "$exporter"), nginx $(size "$nginx")"
python3 - "$work" "$PAIRS" <<'EOF'
import re, sys
work, pairs = sys.argv[1], int(sys.argv[2])
def rate(name):
    text = open(f"{work}/{name}.txt").read()
    return float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
n = [rate(f"nginx-{i}") for i in range(1, pairs + 1)]
e = [rate(f"exporter-{i}") for i in range(1, pairs + 1)]
each = ", ".join(f"{a / b:.2f}" for a, b in zip(e, n))
cpu = lambda name: sum(float(open(f"{work}/{name}-{i}.cpu").read()) for i in range(1, pairs + 1)) / pairs
print(f"mean: nginx {sum(n) / pairs:.0f} requests/s, exporter {sum(e) / pairs:.0f} requests/s")
print(f"ratio exporter / nginx: {sum(e) / sum(n):.2f} (pairs: {each}; target at least 0.8)")
print(f"server CPU per request: nginx {cpu('nginx'):.1f} us, exporter {cpu('exporter'):.1f} us, "
      f"ratio {cpu('exporter') / cpu('nginx'):.2f}")
EOF

echo "== wrk -t$THREADS -c$MANY_CONNECTIONS -d$DURATION against the exporter"
wait_quiet
run exporter-512 "$exporter" "$MANY_CONNECTIONS"
if grep -qE 'Socket errors|Non-2xx' "$work/exporter-512.txt"; then
    echo "FAIL: errors with $MANY_CONNECTIONS connections" >&2
    exit 1
fi
echo "no socket errors, no non-2xx answers with $MANY_CONNECTIONS connections"
