#!/usr/bin/env python3
"""Helpers of scripts/e2e.sh: a webhook receiver, free ports, and checks through the HTTP APIs
of Prometheus and Alertmanager. Standard library only.

    e2e_prom.py free-ports N
    e2e_prom.py webhook PORT FILE                 serve; append each POST body to FILE as a line
    e2e_prom.py targets-up PROM N TIMEOUT         N active targets, all up
    e2e_prom.py wait-query PROM EXPR TIMEOUT      until EXPR returns at least one series
    e2e_prom.py dashboards PROM INSTANCE MIN_SHARE FILE...
                                                  every panel query valid, MIN_SHARE of each
                                                  dashboard's queries with data
    e2e_prom.py variables PROM INSTANCE FILE...   every variable query valid and non-empty
    e2e_prom.py rules-healthy PROM TIMEOUT        every rule evaluated, all healthy
    e2e_prom.py wait-alert FILE ALERTNAME INSTANCE TIMEOUT [LABEL=VALUE...]
                                                  until the webhook got ALERTNAME firing for INSTANCE
                                                  (and with those labels)
    e2e_prom.py wait-inhibited AM FILE ALERTNAME INSTANCE TIMEOUT
                                                  until Alertmanager holds ALERTNAME for INSTANCE
                                                  suppressed by an inhibition, and the webhook
                                                  (FILE) never got it
    e2e_prom.py online-connector SIM              the id of a connector the simulator has ONLINE
                                                  and not pinned

Checks print what they found and exit 0 on success, 1 on failure.
"""
import http.server
import json
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# What Grafana would put in place of its variables. The job is the e2e's scrape job, the
# instance the exporter under test; the session filters are at their "All" value (.*).
# $__rate_interval is what Grafana computes for a 15s scrape interval, $__range the
# dashboards' default time range.
GRAFANA_VARS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "6h",
    "vpn_region": ".*",
    "network": ".*",
    "user_group": ".*",
    "protocol": ".*",
    "os_type": ".*",
}

def get(prom, path, **params):
    url = f"{prom}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            return json.load(e)
        except ValueError:
            return {"status": "error", "error": f"HTTP {e.code}"}
    except (urllib.error.URLError, OSError, ValueError) as e:
        return {"status": "error", "error": str(e)}


def until(timeout, probe, interval=0.5):
    """Calls probe() until it returns a true value or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


def substitute(expr, job, instance):
    # Grafana escapes regex metacharacters in a selected value, doubling the backslash for the
    # PromQL string: 127.0.0.1 becomes 127\\.0\\.0\\.1.
    def regex(value):
        return re.escape(value).replace("\\", "\\\\")

    values = dict(GRAFANA_VARS, job=regex(job), instance=regex(instance))

    def repl(m):
        name = m.group(1) or m.group(2)
        return values.get(name, m.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def panels_of(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def free_ports(n):
    socks = []
    for _ in range(int(n)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()
    return 0


def webhook(port, path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with open(path, "ab") as f:
                f.write(body.replace(b"\n", b" ") + b"\n")
            self.send_response(200)
            self.end_headers()

        def do_GET(self):  # readiness probe of the test
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


def targets_up(prom, n, timeout):
    def probe():
        targets = get(prom, "/api/v1/targets", state="active").get("data", {}).get("activeTargets", [])
        return targets if len(targets) == int(n) and all(t["health"] == "up" for t in targets) else None

    if until(float(timeout), probe):
        return 0
    for t in get(prom, "/api/v1/targets").get("data", {}).get("activeTargets", []):
        print(f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}")
    return 1


def wait_query(prom, expr, timeout):
    if until(float(timeout), lambda: get(prom, "/api/v1/query", query=expr).get("data", {}).get("result")):
        return 0
    print(f"no result for {expr} within {timeout}s")
    return 1


# The share of queries with data each dashboard must reach on its own, below the overall bar: a
# dashboard whose queries return nothing cannot hide behind the others' share, while a dashboard
# whose few failure panels are still empty (no session has failed yet) does not sink the run.
MIN_SHARE_EACH = 0.8


def dashboards(prom, instance, min_share, files):
    """Every query valid; at least `min_share` of all the dashboards' queries return data, and
    at least MIN_SHARE_EACH of each dashboard's."""
    now = time.time()
    failed = False
    all_total, all_with_data = 0, 0
    for path in files:
        d = json.load(open(path, encoding="utf-8"))
        total, with_data, invalid, empty = 0, 0, [], []
        for panel in panels_of(d):
            for t in panel.get("targets", []):
                expr = substitute(t["expr"], "cloudconnexa", instance)
                where = f"{panel['title']} / {t['refId']}"
                if t.get("instant"):
                    r = get(prom, "/api/v1/query", query=expr, time=now)
                else:
                    r = get(prom, "/api/v1/query_range", query=expr, start=now - 300, end=now, step=5)
                total += 1
                if r.get("status") != "success":
                    invalid.append(f"{where}: {r.get('error')}\n    {expr}")
                elif r["data"]["result"]:
                    with_data += 1
                else:
                    empty.append(where)
        share = with_data / total if total else 0
        ok = total and not invalid and share >= MIN_SHARE_EACH
        failed |= not ok
        all_total += total
        all_with_data += with_data
        print(f"{d['uid']}: {total} queries, {total - len(invalid)} valid, {with_data} returned data ({share:.0%})"
              + ("" if ok else "  <- below the bar"))
        for e in empty:
            print(f"  empty: {e}")
        for e in invalid[:10]:
            print(f"  INVALID: {e}")
        if len(invalid) > 10:
            print(f"  ... and {len(invalid) - 10} more invalid")
    overall = all_with_data / all_total if all_total else 0
    print(f"all dashboards: {all_with_data} of {all_total} queries returned data ({overall:.0%}, "
          f"at least {float(min_share):.0%} needed, and {MIN_SHARE_EACH:.0%} of each dashboard's)")
    failed |= overall < float(min_share)
    return 1 if failed or not files else 0


def variables(prom, instance, files):
    problems, n = [], 0
    for path in files:
        d = json.load(open(path, encoding="utf-8"))
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            n += 1
            query = substitute(v["definition"], "cloudconnexa", instance)
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            if not m:
                problems.append(f"{d['uid']} ${v['name']}: not a label_values(selector, label) query: {query}")
                continue
            r = get(prom, f"/api/v1/label/{m.group(2)}/values", **{"match[]": m.group(1)})
            if r.get("status") != "success" or not r["data"]:
                problems.append(f"{d['uid']} ${v['name']}: {r.get('error') or 'no values'}: {query}")
    print(f"{n} variable queries, {n - len(problems)} valid with values")
    print("\n".join(problems))
    return 1 if problems else 0


def rules_healthy(prom, timeout):
    def rules():
        groups = get(prom, "/api/v1/rules").get("data", {}).get("groups", [])
        return [(g["name"], r) for g in groups for r in g["rules"]]

    def all_evaluated():
        rs = rules()
        return rs if rs and all(r.get("health") != "unknown" for _, r in rs) else None

    rs = until(float(timeout), all_evaluated) or rules()
    bad = [f"{g} / {r['name']}: {r.get('health')} {r.get('lastError', '')}" for g, r in rs if r.get("health") != "ok"]
    print(f"{len(rs)} rules, {len(rs) - len(bad)} healthy")
    print("\n".join(bad))
    return 0 if rs and not bad else 1


def webhook_got(path, labels):
    """The first firing alert the webhook received whose labels include `labels`, or None."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        return None
    for line in lines:
        for a in json.loads(line).get("alerts", []):
            got = a.get("labels", {})
            if a.get("status") == "firing" and all(got.get(k) == v for k, v in labels.items()):
                return a
    return None


def wait_alert(path, alertname, instance, timeout, *matchers):
    wanted = dict(m.split("=", 1) for m in matchers)
    wanted.update(alertname=alertname, instance=instance)
    alert = until(float(timeout), lambda: webhook_got(path, wanted))
    shown = ", ".join(f"{k}={v}" for k, v in wanted.items() if k != "alertname")
    if alert:
        print(f"received {alertname} for {shown}: {alert['annotations'].get('summary', '')}")
        print(f"  {alert['annotations'].get('description', '')}")
        return 0
    print(f"{alertname} for {shown} did not reach the webhook within {timeout}s")
    return 1


def wait_inhibited(am, path, alertname, instance, timeout):
    """An alert that an inhibition rule mutes: Alertmanager has it, suppressed by another alert,
    and no notification of it went out. The webhook is read again after a few seconds (the test's
    group_wait and group_interval), so that a notification sent just before the suppression shows."""
    filters = [f'alertname="{alertname}"', f'instance="{instance}"']

    def suppressed():
        alerts = get(am, "/api/v2/alerts", filter=filters)
        if not isinstance(alerts, list):
            return None
        return next((a for a in alerts if a["status"].get("inhibitedBy")), None)

    alert = until(float(timeout), suppressed)
    if not alert:
        found = get(am, "/api/v2/alerts", filter=filters)
        states = [a["status"] for a in found] if isinstance(found, list) else found
        print(f"{alertname} for {instance} was not inhibited within {timeout}s (Alertmanager has: {states})")
        return 1
    time.sleep(4)
    if webhook_got(path, {"alertname": alertname, "instance": instance}):
        print(f"{alertname} for {instance} is inhibited now, but the webhook received it")
        return 1
    print(f"{alertname} for {instance} held back by an inhibition ({alert['status']['state']}); "
          f"the webhook never got it")
    return 0


def online_connector(sim):
    """Prints the id of a connector that the simulator has ONLINE and not pinned, so that the
    test's OFFLINE is the only reason for an alert about it."""
    connectors = get(sim, "/_sim/connectors")
    if not isinstance(connectors, list):
        print(f"GET {sim}/_sim/connectors: {connectors}", file=sys.stderr)
        return 1
    for c in sorted(connectors, key=lambda c: c["id"]):
        if c.get("connection_status") == "ONLINE" and not c.get("pinned"):
            print(c["id"])
            return 0
    print(f"no ONLINE connector among {len(connectors)}", file=sys.stderr)
    return 1


def main(argv):
    commands = {
        "free-ports": free_ports,
        "webhook": webhook,
        "targets-up": targets_up,
        "wait-query": wait_query,
        "rules-healthy": rules_healthy,
        "wait-alert": wait_alert,
        "online-connector": online_connector,
        "wait-inhibited": wait_inhibited,
    }
    if len(argv) >= 6 and argv[1] == "dashboards":
        return dashboards(argv[2], argv[3], argv[4], argv[5:])
    if len(argv) >= 5 and argv[1] == "variables":
        return variables(argv[2], argv[3], argv[4:])
    if len(argv) >= 2 and argv[1] in commands:
        return commands[argv[1]](*argv[2:])
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
