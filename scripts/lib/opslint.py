#!/usr/bin/env python3
"""Static checks of the alert rules' runbooks, the Grafana dashboards, the Alertmanager
inhibitions, the Dockerfile and the compose demo stack (used by check-ops.sh).

    opslint.py rules FILE...        every alert has a runbook section in README.md, its annotations,
                                    a severity and the CloudConnexa prefix
    opslint.py dashboards FILE...   structure, variables and query filters of each dashboard; a
                                    per-collector series named by its collector; no count over
                                    every state of a connector
    opslint.py compose FILE         the compose file parses and everything it mounts exists
    opslint.py dockerfile-user FILE the final stage of a Dockerfile runs as a non-root user
    opslint.py inhibitions ALERTMANAGER RULES...
                                    every alert name an inhibition rule matches exists in RULES

Each prints what is wrong and exits non-zero, or prints nothing and exits 0.
"""
import json
import os
import re
import sys

SESSION_DIMS = ["vpn_region", "network", "user_group", "protocol", "os_type"]
# Metrics labelled by every session dimension, and the one labelled by vpn_region alone.
DIM_METRICS = re.compile(
    r"^cloudconnexa_(sessions_active|sessions_started_total|sessions_ended_total|sessions_failed_total"
    r"|session_in_bytes_total|session_out_bytes_total)$"
)
REGION_METRICS = re.compile(r"^cloudconnexa_session_duration_seconds(_bucket|_sum|_count)?$")
# The collectors' self-metrics, one series per collector: a panel that neither picks one
# collector nor aggregates the label away must name it in its legend, or the collectors' series
# look alike.
PER_COLLECTOR_METRICS = re.compile(
    r"^cloudconnexa_(collector_up|last_successful_poll_timestamp_seconds|poll_duration_seconds"
    r"|poll_cycles_total|poll_errors_total)$"
)
AGGREGATION = re.compile(
    r"\b(sum|min|max|avg|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\s*"
    r"(?:(by|without)\s*\(([^)]*)\))?\s*\("
)
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
BARE_METRIC = re.compile(r"\b(cloudconnexa_[a-z0-9_]+|process_[a-z0-9_]+|up)\b(?!\s*\{)")


def panels_of(dashboard):
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def check_dashboard(path):
    problems = []
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        d = json.loads(text)
    except (OSError, ValueError) as e:
        return [f"{name}: does not parse: {e}"]

    def bad(msg):
        problems.append(f"{name}: {msg}")

    expected_uid = name.removesuffix(".json")
    if d.get("uid") != expected_uid:
        bad(f"uid is {d.get('uid')!r}, expected the stable {expected_uid!r}")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        bad(f"schemaVersion {d.get('schemaVersion')!r} is older than Grafana 9 (36)")
    if "__inputs" in d or "${DS_" in text:
        bad("uses an import-time ${DS_...} input instead of the datasource variable")
    if d.get("id") is not None:
        bad("has a fixed numeric id; provisioned dashboards need id null")

    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        bad("no `datasource` variable of type datasource (prometheus)")
    # The Job and Instance variables list the targets of cloudconnexa_up, narrowed by the
    # mixin's selector (mixin/dashboards/dashboards.libsonnet sets it; default job=~".*cloudconnexa.*").
    for var in ("job", "instance"):
        v = variables.get(var)
        definition = (v or {}).get("definition", "")
        if not v or v.get("type") != "query" or not re.fullmatch(rf"label_values\(cloudconnexa_up(\{{.*\}})?, {var}\)", definition):
            bad(f"no `{var}` query variable from label_values(cloudconnexa_up{{...}}, {var})")
    wants_dims = any(DIM_METRICS.match(m) for m in SELECTOR.findall(text) for m in [m[0]])
    if wants_dims:
        for dim in SESSION_DIMS:
            v = variables.get(dim)
            if not v or v.get("type") != "query" or not v.get("multi") or not v.get("includeAll"):
                bad(f"no multi-value `{dim}` filter variable with an All option")
            elif v.get("allValue") != ".*":
                bad(f"`{dim}` variable's All value must be .* so that series without the label still match")

    ids = set()
    n_targets = 0
    for panel in panels_of(d):
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            bad(f"panel id {panel.get('id')} is used twice")
        ids.add(panel.get("id"))
        if panel.get("type") == "row":
            continue
        if not panel.get("targets"):
            bad(f"panel {title!r} has no query")
        for t in panel.get("targets", []):
            n_targets += 1
            if (t.get("datasource") or panel.get("datasource") or {}).get("uid") != "${datasource}":
                bad(f"panel {title!r} does not use the ${{datasource}} variable")
            expr = t.get("expr", "")
            if not expr:
                bad(f"panel {title!r} target {t.get('refId')} has no expr")
            problems.extend(f"{name}: panel {title!r}: {p}" for p in check_expr(expr))
            if panel.get("type") != "table" and per_collector_unnamed(expr, t.get("legendFormat", "")):
                bad(f"panel {title!r} target {t.get('refId')}: one series per collector, but the legend "
                    f"{t.get('legendFormat', '')!r} does not name {{{{collector}}}} (or pick one with collector=...)")
    if n_targets == 0:
        bad("has no queries")
    return problems


def check_expr(expr):
    """Every series selector is filtered by job and instance, and by the dimensions it has."""
    problems = []
    for metric in BARE_METRIC.findall(re.sub(r'"[^"]*"', '""', expr)):
        problems.append(f"{metric} is not filtered by job and instance")
    for m in SELECTOR.finditer(expr):
        metric, matchers = m.group(1), m.group(2)
        needed = ['job=~"$job"', 'instance=~"$instance"']
        if DIM_METRICS.match(metric):
            needed += [f'{dim}=~"${dim}"' for dim in SESSION_DIMS]
        elif REGION_METRICS.match(metric):
            needed += ['vpn_region=~"$vpn_region"']
        for n in needed:
            if n not in matchers:
                problems.append(f"{metric} lacks the filter {n}")
        # Every connector has a series per state (1 for its current one): counting them counts
        # each connector three times; sum them, or pick a state.
        if metric == "cloudconnexa_connector_status" and "status" not in matchers and re.search(r"\bcount\b", expr):
            problems.append("counts cloudconnexa_connector_status over every state (each connector has a "
                            "series per state): use sum, or a status=... matcher")
    return problems


def keeps_label(expr, label):
    """True unless an aggregation in expr drops `label` (by without it, without it, or neither)."""
    for _, clause, labels in AGGREGATION.findall(expr):
        names = {n.strip() for n in labels.split(",")}
        if not clause or (clause == "by") != (label in names):
            return False
    return True


def per_collector_unnamed(expr, legend):
    """A per-collector metric queried for every collector, its label kept, yet not in the legend."""
    every_collector = any(
        PER_COLLECTOR_METRICS.match(m.group(1)) and not re.search(r"\bcollector\s*(=|!=|=~|!~)", m.group(2))
        for m in SELECTOR.finditer(expr)
    )
    return every_collector and keeps_label(expr, "collector") and "{{collector}}" not in legend


def heading_anchors(markdown):
    """GitHub's anchor of every heading: lower case, spaces to dashes, punctuation dropped."""
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", markdown, re.M)}


def check_rules(path, anchors):
    """Each alert of a rule file: runbook anchor in README.md, annotations, severity, names."""
    import yaml

    problems = []
    with open(path, encoding="utf-8") as f:
        groups = yaml.safe_load(f)["groups"]
    for group in groups:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            name = rule["alert"]
            annotations = rule.get("annotations", {})
            url = annotations.get("runbook_url", "")
            if url.partition("#")[2] not in anchors:
                problems.append(f"{name}: runbook_url {url!r} has no matching heading")
            for key in ("summary", "description"):
                if not annotations.get(key):
                    problems.append(f"{name}: no {key} annotation")
            if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                problems.append(f"{name}: severity is not critical, warning or info")
            if not name.startswith("CloudConnexa") or not group["name"].startswith("CloudConnexa"):
                problems.append(f"{name}: alert or group name lacks the CloudConnexa prefix")
    return problems


def check_compose(path):
    import yaml  # PyYAML; check-ops.sh installs it when missing

    problems = []
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        return [f"{path}: does not parse: {e}"]
    services = (doc or {}).get("services")
    if not isinstance(services, dict) or not services:
        return [f"{path}: no services"]
    named_volumes = set((doc.get("volumes") or {}).keys())
    targets = {}
    for name, svc in services.items():
        if not svc.get("image") and not svc.get("build"):
            problems.append(f"service {name}: neither image nor build")
        build = svc.get("build")
        if build:
            context = build if isinstance(build, str) else build.get("context", ".")
            ctx = os.path.normpath(os.path.join(base, context))
            if not os.path.isdir(ctx):
                problems.append(f"service {name}: build context {context} does not exist")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not os.path.isfile(os.path.join(ctx, dockerfile)):
                problems.append(f"service {name}: {dockerfile} not found in the build context")
        for dep in svc.get("depends_on") or []:
            if dep not in services:
                problems.append(f"service {name}: depends on unknown service {dep}")
        for vol in svc.get("volumes") or []:
            if isinstance(vol, str):
                parts = vol.split(":")
                source, target = parts[0], parts[1] if len(parts) > 1 else ""
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            else:
                source, target, kind = vol.get("source", ""), vol.get("target", ""), vol.get("type", "volume")
            targets[target] = name
            if kind == "bind":
                if not os.path.exists(os.path.normpath(os.path.join(base, os.path.expanduser(source)))):
                    problems.append(f"service {name}: mounts {source}, which does not exist")
            elif kind == "volume" and source and source not in named_volumes:
                problems.append(f"service {name}: named volume {source} is not declared")
    return [f"{path}: {p}" for p in problems]


def check_dockerfile_user(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    last_stage = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    users = [line.split(None, 1)[1] for line in lines[last_stage:] if line.upper().startswith("USER ")]
    base = lines[last_stage].split()[1]
    if users:
        user = users[-1].split(":")[0]
        if user in ("root", "0"):
            return [f"{path}: the final stage runs as {user}"]
        return []
    if base.endswith(":nonroot"):
        return []
    return [f"{path}: the final stage ({base}) sets no USER, so it runs as root"]


# `alertname = X`, `alertname="X"`, `alertname =~ "A|B"`: an Alertmanager matcher on alertname.
ALERTNAME_MATCHER = re.compile(r'^\s*alertname\s*(=~|=)\s*"?([^"]*)"?\s*$')


def check_inhibitions(path, rule_files):
    """Every alert name an inhibition rule matches exists: a renamed alert would otherwise leave
    an inhibition that silently no longer applies."""
    import yaml

    names = set()
    for rule_file in rule_files:
        with open(rule_file, encoding="utf-8") as f:
            names |= {r["alert"] for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r}
    with open(path, encoding="utf-8") as f:
        rules = (yaml.safe_load(f) or {}).get("inhibit_rules") or []
    problems = []
    for i, rule in enumerate(rules, 1):
        for side in ("source_matchers", "target_matchers"):
            matched = []
            for matcher in rule.get(side) or []:
                m = ALERTNAME_MATCHER.match(matcher)
                if not m:
                    continue
                op, value = m.groups()
                # Only plain names and alternations of names are checked; a real regex is not.
                wanted = value.split("|") if op == "=~" else [value]
                if op == "=~" and not all(re.fullmatch(r"\w+", w) for w in wanted):
                    continue
                matched += wanted
            if not matched:
                problems.append(f"{path}: inhibit rule {i}: {side} names no alert (alertname = or =~ \"A|B\")")
            problems += [f"{path}: inhibit rule {i}: {side} names {n}, which no rule defines" for n in matched if n not in names]
    return problems


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    what, files = argv[1], argv[2:]
    if what == "rules":
        with open("README.md", encoding="utf-8") as f:
            anchors = heading_anchors(f.read())
        problems = [p for f in files for p in check_rules(f, anchors)]
    elif what == "dashboards":
        problems = [p for f in files for p in check_dashboard(f)]
    elif what == "compose":
        problems = check_compose(files[0])
    elif what == "inhibitions":
        problems = check_inhibitions(files[0], files[1:])
    elif what == "dockerfile-user":
        problems = check_dockerfile_user(files[0])
    else:
        print(f"unknown check {what}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
