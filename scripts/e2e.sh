#!/usr/bin/env bash
# End-to-end test of cloudconnexa_exporter with the real monitoring tools:
#
#   scripts/e2e.sh target/release/cloudconnexa_exporter
#
# It starts, on free loopback ports:
#   - the simulated CloudConnexa API (`cloudconnexa_exporter simulate`),
#   - an exporter polling it, and a second exporter in --demo mode,
#   - a webhook receiver owned by this test, recording what it receives,
#   - Alertmanager, sending every alert to that webhook,
#   - Prometheus, scraping both exporters every 2s and evaluating the project's alert rules.
# Then it checks that both targets are up, that `promtool check metrics` finds nothing to say
# about either exporter's output, that every query of every dashboard panel is valid and that
# at least 90% of the dashboards' queries return data (and 80% of each dashboard's), for each
# exporter, that every dashboard
# variable lists values, and that every rule evaluates healthy. Finally it follows two alerts
# exporter -> Prometheus -> Alertmanager -> webhook: a connector set OFFLINE in the simulator
# (CloudConnexaConnectorOffline, for that connector) and revoked credentials
# (CloudConnexaCredentialsRejected), and checks that the project's Alertmanager inhibitions
# (deploy/alertmanager.yml) hold back CloudConnexaPollFailing, which follows from the latter.
#
# Prometheus and Alertmanager come from Debian's packages, installed when missing.
# Every process started here is stopped on exit. Closes with `e2e: N passed, M failed` and
# exits non-zero when something failed; the logs of every process are shown then.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH/TO/cloudconnexa_exporter" >&2
    exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/lib/tools.sh
. scripts/lib/tools.sh
helper=scripts/lib/e2e_prom.py

need_cmd prometheus prometheus || exit 1
need_cmd promtool prometheus || exit 1
need_cmd prometheus-alertmanager prometheus-alertmanager || exit 1
need_cmd curl curl || exit 1

# The exporter reads its flags from CLOUDCONNEXA_* variables too: none may leak in from the caller.
while read -r var; do
    case $var in CLOUDCONNEXA_*) unset "$var" ;; esac
done < <(compgen -e)

work=$(mktemp -d "${TMPDIR:-/tmp}/cloudconnexa-e2e.XXXXXX")
pids=()

cleanup() {
    local pid log
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    if [ "$checks_failed" -gt 0 ] || [ -n "${E2E_SHOW_LOGS:-}" ]; then
        for log in "$work"/*.log; do
            [ -s "$log" ] || continue
            echo "--- last lines of $(basename "$log")"
            tail -n 25 "$log"
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs COMMAND in the background, its output in $work/NAME.log.
start() {
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    eval "pid_$name=$!"
}

# wait_http NAME URL TIMEOUT: until URL answers 2xx, giving up early if process NAME died.
wait_http() {
    local name=$1 url=$2 deadline=$((SECONDS + $3)) pid_var="pid_$1"
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! kill -0 "${!pid_var}" 2>/dev/null; then
            echo "$name exited; see its log below"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$url did not answer 2xx within $3s"
            return 1
        fi
        sleep 0.3
    done
}

# metrics_lint URL: `promtool check metrics` must have nothing to say about URL's output.
metrics_lint() {
    local out
    curl -fsS --max-time 5 "$1" >"$work/metrics.txt" || return 1
    out=$(promtool check metrics <"$work/metrics.txt" 2>&1) || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "$out"; return 1; }
    echo "$(grep -vc '^#' "$work/metrics.txt") samples"
}

read -r p_sim p_exp p_demo p_prom p_am p_hook < <(python3 "$helper" free-ports 6)
sim=http://127.0.0.1:$p_sim
exporter=127.0.0.1:$p_exp
demo=127.0.0.1:$p_demo
prom=http://127.0.0.1:$p_prom
am=http://127.0.0.1:$p_am

# --- configuration --------------------------------------------------------------------------
printf 'demo\n' >"$work/secret"

# The project's rules, with every `for:` shortened to 1s so that an alert fires within seconds
# of its condition; the expressions are left as they are.
sed -E 's/^([[:space:]]*)for: .*/\1for: 1s/' alerts/cloudconnexa.rules.yml >"$work/rules.yml"

cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 2s
rule_files:
  - $work/rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$p_am"]
scrape_configs:
  - job_name: cloudconnexa
    static_configs:
      - targets: ["$exporter", "$demo"]
EOF

# Its own route to the test's webhook, and the project's inhibition rules as they are (the
# last section of deploy/alertmanager.yml).
cat >"$work/alertmanager.yml" <<EOF
route:
  receiver: webhook
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: http://127.0.0.1:$p_hook/
        send_resolved: false
EOF
sed -n '/^inhibit_rules:/,$p' deploy/alertmanager.yml >>"$work/alertmanager.yml"

# --- processes ------------------------------------------------------------------------------
started=$SECONDS  # the deadlines below count from here, after any tool installation
start webhook python3 "$helper" webhook "$p_hook" "$work/webhook.jsonl"
# The simulated world runs 300 times faster than real time (5 hours a minute), so that within
# the test sessions start, end and fail at any hour and on any day of the week (the world follows
# office hours and weekends). Its rate limit lets the exporter poll every 2s and still sends the
# rate-limit headers.
start simulator "$bin" simulate --listen-address "127.0.0.1:$p_sim" --seed 7 --speed 300 \
    --rate-limit.burst 200 --rate-limit.replenish-rate 100 --rate-limit.replenish-time 1s
# The exporter starts once the simulator answers, so that its first poll does not have to retry.
check "simulator answers" wait_http simulator "$sim/_sim/faults" 30
# Every collector runs every 2s (regions 5s), so that their rates and the connector states
# move within the test.
start exporter "$bin" --cloudconnexa.url "$sim" --cloudconnexa.client-id demo \
    --cloudconnexa.client-secret-file "$work/secret" --poll.interval 2s \
    --collector.connectors.interval 2s --collector.users.interval 2s \
    --collector.regions.interval 5s --web.listen-address "$exporter"
start demo "$bin" --demo --web.listen-address "$demo"
start alertmanager prometheus-alertmanager --config.file="$work/alertmanager.yml" \
    --storage.path="$work/alertmanager" --web.listen-address="127.0.0.1:$p_am" \
    --cluster.listen-address= --log.level=warn
start prometheus prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
    --web.listen-address="127.0.0.1:$p_prom" --log.level=warn

# --- checks ---------------------------------------------------------------------------------
check "webhook receiver answers" wait_http webhook "http://127.0.0.1:$p_hook/" 20
check "exporter is ready (simulated tenant)" wait_http exporter "http://$exporter/readyz" 60
check "exporter is ready (--demo)" wait_http demo "http://$demo/readyz" 60
check "Alertmanager is ready" wait_http alertmanager "$am/-/ready" 30
check "Prometheus is ready" wait_http prometheus "$prom/-/ready" 30
note "promtool check metrics is silent (simulated tenant)" metrics_lint "http://$exporter/metrics"
note "promtool check metrics is silent (--demo)" metrics_lint "http://$demo/metrics"
check "Prometheus scrapes both exporters, targets up" python3 "$helper" targets-up "$prom" 2 30

# Let Prometheus collect a little history before querying it: a few scrapes since the first
# ended session (rates need two samples) and, within a deadline, a first failed session.
python3 "$helper" wait-query "$prom" \
    "count_over_time(cloudconnexa_sessions_ended_total{instance=\"$exporter\"}[1m]) >= 3" 40 >/dev/null
python3 "$helper" wait-query "$prom" \
    "count_over_time(cloudconnexa_sessions_failed_total{instance=\"$exporter\"}[1m]) >= 2" \
    $((started + 50 > SECONDS ? started + 50 - SECONDS : 1)) >/dev/null
# The --demo exporter polls every 15s: give it, within the same minute, the chance of a first
# ended session seen twice.
python3 "$helper" wait-query "$prom" \
    "count_over_time(cloudconnexa_sessions_ended_total{instance=\"$demo\"}[1m]) >= 2" \
    $((started + 55 > SECONDS ? started + 55 - SECONDS : 1)) >/dev/null
echo "     (data collected for $((SECONDS - started))s)"

# A connector of the simulated tenant goes OFFLINE now; once Prometheus has scraped it so, its
# alert travels while the dashboards are checked (and *Connectors not online* has a row to show).
connector=$(python3 "$helper" online-connector "$sim")
check "simulator sets connector ${connector:-?} OFFLINE" \
    curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' \
    --data '{"connection_status": "OFFLINE"}' "$sim/_sim/connectors/$connector"
check "Prometheus sees it OFFLINE through the connectors collector" python3 "$helper" wait-query "$prom" \
    "cloudconnexa_connector_status{instance=\"$exporter\", connector_id=\"$connector\", status=\"OFFLINE\"} == 1" 20

note "dashboard queries valid, >= 90% with data, >= 80% per dashboard (simulated tenant)" \
    python3 "$helper" dashboards "$prom" "$exporter" 0.9 dashboards/*.json
# The --demo tenant runs in real time but is large enough that a session ends within 50 s of
# any start hour; only its failure panels may still be empty after a minute.
note "dashboard queries valid, >= 90% with data, >= 80% per dashboard (--demo, under a minute)" \
    python3 "$helper" dashboards "$prom" "$demo" 0.9 dashboards/*.json
note "dashboard variables list values" python3 "$helper" variables "$prom" "$demo" dashboards/*.json
note "every rule evaluates healthy" python3 "$helper" rules-healthy "$prom" 30
note "CloudConnexaConnectorOffline for that connector reaches the webhook through Alertmanager" \
    python3 "$helper" wait-alert "$work/webhook.jsonl" CloudConnexaConnectorOffline "$exporter" 60 \
    "connector_id=$connector" severity=critical

check "simulator revokes the credentials" \
    curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' \
    --data '{"revoke_credentials": true}' "$sim/_sim/faults"
note "CloudConnexaCredentialsRejected reaches the webhook through Alertmanager" \
    python3 "$helper" wait-alert "$work/webhook.jsonl" CloudConnexaCredentialsRejected "$exporter" 90
# What follows from refused credentials (the sessions collector failing) must not notify too.
note "CloudConnexaPollFailing, which follows from it, is inhibited and never notified" \
    python3 "$helper" wait-inhibited "$am" "$work/webhook.jsonl" CloudConnexaPollFailing "$exporter" 30

echo "     (took $((SECONDS - started))s)"
summary e2e
