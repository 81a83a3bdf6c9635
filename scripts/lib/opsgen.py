#!/usr/bin/env python3
"""Owns every generated operations file: renders them from their sources and checks that the
committed ones are what the sources give (used by scripts/generate-ops.sh and
scripts/check-kubernetes.sh).

    opsgen.py write [--force]   regenerate every generated file
    opsgen.py check             fail, naming the files, when a committed one differs
    opsgen.py mixin             the mixin renders; its alerts are alerts/, its dashboards dashboards/
    opsgen.py mixin-config      a _config of one's own reaches the rules and the dashboards
    opsgen.py readme-example    the README's jsonnet example works on the mixin vendored alone

Sources and what is generated from them:

    mixin/ (alerts/alerts.libsonnet, config.libsonnet)
        -> alerts/cloudconnexa.rules.yml
        -> deploy/kubernetes/monitoring/prometheusrule.yaml
    dashboards/*.json
        -> mixin/dashboards/*.json                      (so that the mixin stands alone when vendored)
        -> deploy/kubernetes/monitoring/dashboards/*.json (kustomize reads files below its folder only)
        -> deploy/kubernetes/monitoring/kustomization.yaml

Generated YAML files carry the sha256 of their content in their header. `write` refuses to
overwrite one whose content no longer matches it (someone edited the output, not the source)
unless given --force, so that such an edit is ported to the source rather than lost.

Needs jsonnet on PATH and PyYAML (and promtool for readme-example). Prints what is wrong and exits 1, or exits 0.
"""
import hashlib
import json
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
REGENERATE = "scripts/generate-ops.sh"
RULES = "alerts/cloudconnexa.rules.yml"
DASHBOARDS = "dashboards"
MIXIN = "mixin"
MIXIN_DASHBOARDS = "mixin/dashboards"
MONITORING = "deploy/kubernetes/monitoring"
DEFAULT_SELECTOR = 'job=~".*cloudconnexa.*"'
STAMP = re.compile(r"^# sha256 of the content below: ([0-9a-f]{64})\n", re.M)


# --- rendering ---------------------------------------------------------------------------------


def jsonnet(expr):
    """Evaluates a jsonnet expression in the repository's root and returns the value."""
    out = subprocess.run(
        ["jsonnet", "-e", expr], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def mixin_expr(field, config=None):
    mixin = f'(import "{MIXIN}/mixin.libsonnet")'
    if config:
        mixin = f"({mixin} + {{ _config+:: {json.dumps(config)} }})"
    return f"{mixin}.{field}"


def mixin_alerts(config=None):
    return jsonnet(mixin_expr("prometheusAlerts", config))


def mixin_dashboards(config=None):
    return jsonnet(mixin_expr("grafanaDashboards", config))


class Dumper(yaml.SafeDumper):
    """Block style, with lists indented under their key."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


# Stands for a space inside {{ ... }} while dumping, so that folding never breaks a template.
KEEP = "\u00a0"


def _str(dumper, value):
    # Multi-line text (PromQL) as a literal block; long prose folded (`>-`) over lines.
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if len(value) > 80:
        value = re.sub(r"\{\{.*?\}\}", lambda m: m.group(0).replace(" ", KEEP), value)
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=">")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


Dumper.add_representer(str, _str)

# Prometheus' usual order of a rule's keys, and of its annotations.
RULE_KEYS = ["alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"]
ANNOTATION_KEYS = ["summary", "description", "runbook_url"]


def ordered(mapping, first):
    keys = [k for k in first if k in mapping] + sorted(k for k in mapping if k not in first)
    return {k: mapping[k] for k in keys}


def conventional(groups):
    return [
        ordered(
            {
                **group,
                "rules": [
                    ordered({**r, "annotations": ordered(r.get("annotations", {}), ANNOTATION_KEYS)}, RULE_KEYS)
                    if "annotations" in r
                    else ordered(r, RULE_KEYS)
                    for r in group["rules"]
                ],
            },
            ["name", "interval", "rules"],
        )
        for group in groups
    ]


def to_yaml(data):
    if KEEP in json.dumps(data, ensure_ascii=False):
        raise SystemExit("internal error: the data holds the placeholder character U+00A0")
    text = yaml.dump(data, Dumper=Dumper, sort_keys=False, width=100, allow_unicode=True).replace(KEEP, " ")
    # A blank line between rules and between groups, as a person would write them.
    text = re.sub(r"\n(\s+- (?:alert|record): )", r"\n\n\1", text)
    text = re.sub(r"\n(\s+- name: )", r"\n\n\1", text)
    text = re.sub(r"(rules:\n)\n", r"\1", text)
    text = re.sub(r"(groups:\n)\n", r"\1", text)
    if yaml.safe_load(text) != data:
        raise SystemExit("internal error: the YAML written does not read back as the data")
    return text


def stamped(header, body):
    digest = hashlib.sha256(body.encode()).hexdigest()
    return f"{header.rstrip()}\n#\n# sha256 of the content below: {digest}\n{body}"


def stamp_broken(text):
    """True when a stamped file's content is not the content its stamp was made for."""
    m = STAMP.search(text)
    if not m:
        return False
    return hashlib.sha256(text[m.end():].encode()).hexdigest() != m.group(1)


RULES_HEADER = """\
# Prometheus alerting rules for cloudconnexa_exporter.
#
# GENERATED by scripts/generate-ops.sh from the monitoring mixin with its default _config: do
# not edit this file. Edit mixin/alerts/alerts.libsonnet (thresholds and `for` durations:
# mixin/config.libsonnet) and run scripts/generate-ops.sh; the test command fails while this
# file and the mixin differ.
#
# Names follow the monitoring-mixin habit: one prefix (CloudConnexa), a `severity` label
# (critical pages someone, warning goes to a ticket or chat), and `summary`, `description`
# and `runbook_url` annotations. Each runbook is a section of the project's README.
#
# The exporter's own scrape target is found by job name: the selector `job=~".*cloudconnexa.*"`
# matches `cloudconnexa`, `cloudconnexa-exporter`, `monitoring/cloudconnexa-exporter` and the like.
# For another selector, render the mixin with a _config of your own (README, "Monitoring mixin").
#
# Unit tests: alerts/tests/*.yml (`promtool test rules alerts/tests/*.yml`)."""

PROMETHEUS_RULE_HEADER = """\
# The project's alert rules as a PrometheusRule for the Prometheus Operator: the groups of
# alerts/cloudconnexa.rules.yml, exactly.
#
# GENERATED by scripts/generate-ops.sh from the monitoring mixin (mixin/alerts/alerts.libsonnet):
# do not edit this file; edit the mixin and run scripts/generate-ops.sh."""

KUSTOMIZATION_HEADER = """\
# The alert rules and dashboards of cloudconnexa_exporter, for the Prometheus Operator and
# Grafana's dashboard sidecar. Install them once per namespace however many exporters
# (tenants) there are: every rule and panel covers all of them. overlays/demo and
# overlays/tenants include this folder.
#
# GENERATED by scripts/generate-ops.sh, with prometheusrule.yaml and dashboards/ (copies of the
# repository's dashboards/*.json, since kustomize reads only files below this folder): do not
# edit; edit the sources and run scripts/generate-ops.sh."""


def kustomization(dashboard_files):
    lines = [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "",
        "labels:",
        "  - pairs:",
        "      app.kubernetes.io/name: cloudconnexa-exporter",
        "      app.kubernetes.io/component: monitoring",
        "",
        "resources:",
        "  - prometheusrule.yaml",
        "",
        "# One ConfigMap per dashboard, labelled for Grafana's dashboard sidecar (grafana_dashboard: \"1\",",
        "# the label kube-prometheus-stack's sidecar looks for), into a CloudConnexa folder where the",
        "# sidecar files dashboards by the grafana_folder annotation. Stable names, without kustomize's",
        "# content hash: a renamed ConfigMap would leave the old one, and so a duplicate dashboard,",
        "# behind after `kubectl apply`.",
        "generatorOptions:",
        "  disableNameSuffixHash: true",
        "configMapGenerator:",
    ]
    for name in dashboard_files:
        lines += [
            f"  - name: {name.removesuffix('.json')}-dashboard",
            "    files:",
            f"      - dashboards/{name}",
            "    options:",
            "      labels:",
            '        grafana_dashboard: "1"',
            "      annotations:",
            "        grafana_folder: CloudConnexa",
        ]
    return stamped(KUSTOMIZATION_HEADER, "\n".join(lines) + "\n")


def prometheus_rule(groups):
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "cloudconnexa-exporter"},
        "spec": {"groups": groups},
    }
    return stamped(PROMETHEUS_RULE_HEADER, to_yaml(obj))


def expected_files():
    """Every generated file: path relative to the root -> content (str or bytes)."""
    groups = conventional(mixin_alerts()["groups"])
    files = {
        RULES: stamped(RULES_HEADER, to_yaml({"groups": groups})),
        f"{MONITORING}/prometheusrule.yaml": prometheus_rule(groups),
    }
    names = sorted(n for n in os.listdir(os.path.join(ROOT, DASHBOARDS)) if n.endswith(".json"))
    for name in names:
        with open(os.path.join(ROOT, DASHBOARDS, name), "rb") as f:
            data = f.read()
        files[f"{MIXIN_DASHBOARDS}/{name}"] = data
        files[f"{MONITORING}/dashboards/{name}"] = data
    files[f"{MONITORING}/kustomization.yaml"] = kustomization(names)
    return files


def stale_files(expected):
    """Generated copies whose source is gone (a dashboard removed from dashboards/)."""
    stale = []
    for folder in (MIXIN_DASHBOARDS, f"{MONITORING}/dashboards"):
        path = os.path.join(ROOT, folder)
        for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
            if name.endswith(".json") and f"{folder}/{name}" not in expected:
                stale.append(f"{folder}/{name}")
    return stale


def read(rel):
    try:
        with open(os.path.join(ROOT, rel), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def as_bytes(content):
    return content if isinstance(content, bytes) else content.encode()


# --- commands ----------------------------------------------------------------------------------


def write(force):
    expected = expected_files()
    edited = []
    for rel, content in expected.items():
        current = read(rel)
        if current is not None and current != as_bytes(content) and stamp_broken(current.decode()):
            edited.append(rel)
    if edited and not force:
        for rel in edited:
            print(f"{rel} was edited by hand (its content no longer matches its sha256 stamp).")
        print("Port the change to its source (see the file's header), or run with --force to discard it.")
        return 1
    changed = 0
    for rel, content in expected.items():
        if read(rel) != as_bytes(content):
            os.makedirs(os.path.dirname(os.path.join(ROOT, rel)), exist_ok=True)
            with open(os.path.join(ROOT, rel), "wb") as f:
                f.write(as_bytes(content))
            print(f"wrote {rel}")
            changed += 1
    for rel in stale_files(expected):
        os.remove(os.path.join(ROOT, rel))
        print(f"removed {rel}")
        changed += 1
    print(f"{changed} file(s) changed; {len(expected)} generated files in all")
    return 0


def check():
    expected = expected_files()
    problems = [f"{rel}: missing" for rel, c in expected.items() if read(rel) is None]
    problems += [
        f"{rel}: differs from what its source gives"
        + (" (and was edited by hand: port the edit to its source first)" if stamp_broken(read(rel).decode()) else "")
        for rel, c in expected.items()
        if read(rel) is not None and read(rel) != as_bytes(c)
    ]
    problems += [f"{rel}: its source is gone" for rel in stale_files(expected)]
    if problems:
        print("\n".join(problems))
        print(f"run {REGENERATE} and commit the result")
        return 1
    print(f"{len(expected)} generated files up to date")
    return 0


def check_mixin():
    problems = []
    alerts = mixin_alerts()
    with open(os.path.join(ROOT, RULES), encoding="utf-8") as f:
        committed = yaml.safe_load(f)
    if alerts != committed:
        problems.append(f"the mixin's prometheusAlerts differ from {RULES}")
    dashboards = mixin_dashboards()
    names = sorted(n for n in os.listdir(os.path.join(ROOT, DASHBOARDS)) if n.endswith(".json"))
    if sorted(dashboards) != names:
        problems.append(
            f"the mixin's grafanaDashboards are {sorted(dashboards)}, {DASHBOARDS}/ has {names}: "
            "list them in mixin/dashboards/dashboards.libsonnet"
        )
    for name in set(dashboards) & set(names):
        with open(os.path.join(ROOT, DASHBOARDS, name), encoding="utf-8") as f:
            if json.load(f) != dashboards[name]:
                problems.append(f"the mixin's {name} differs from {DASHBOARDS}/{name}")
    n_rules = sum(len(g["rules"]) for g in alerts["groups"])
    print(f"mixin: {n_rules} alerting rules in {len(alerts['groups'])} groups, {len(dashboards)} dashboards")
    if problems:
        print("\n".join(problems))
    return 1 if problems else 0


def check_mixin_config():
    """A user's _config reaches what it should: every rule that selects by job, the `for`
    durations and thresholds, the runbook URLs, and the dashboards' Job and Instance variables."""
    mine = 'job="vpn-metrics", cluster="eu1"'
    config = {
        "cloudconnexaSelector": mine,
        "runbookURLPattern": "https://runbooks.example/cloudconnexa#%s",
        "exporterDownFor": "7m",
        "dataStaleMinutes": 42,
        "sessionFailureRatioThreshold": "0.25",
        "regionSessionsMin": 33,
    }
    problems = []
    default = mixin_alerts()
    alerts = mixin_alerts(config)
    rules = {r["alert"]: r for g in alerts["groups"] for r in g["rules"]}
    default_rules = {r["alert"]: r for g in default["groups"] for r in g["rules"]}
    for name, rule in rules.items():
        text = json.dumps(rule)
        if "job=~" in default_rules[name]["expr"] or re.search(r"\bup\b", rule["expr"]):
            if mine not in rule["expr"]:
                problems.append(f"{name}: expr does not use the selector {mine}: {rule['expr']}")
        if DEFAULT_SELECTOR.replace('"', '\\"') in text or "matches \\\"cloudconnexa\\\"" in text:
            problems.append(f"{name}: still names the default selector: {text}")
        if not rule["annotations"]["runbook_url"].startswith("https://runbooks.example/cloudconnexa#"):
            problems.append(f"{name}: runbook_url ignores runbookURLPattern")
    expectations = {
        "CloudConnexaExporterDown": lambda r: r["for"] == "7m" and "for 7 minutes" in r["annotations"]["description"],
        "CloudConnexaDataStale": lambda r: "> 42 * 60" in r["expr"],
        "CloudConnexaSessionFailureRatioHigh": lambda r: ") > 0.25\n" in r["expr"],
        "CloudConnexaRegionSessionsDropped": lambda r: ">= 33\n" in r["expr"],
    }
    for name, ok in expectations.items():
        if name not in rules or not ok(rules[name]):
            problems.append(f"{name}: the configured threshold or duration does not reach it")
    n_selecting = sum(1 for r in rules.values() if mine in r["expr"])
    if n_selecting == 0:
        problems.append("no rule uses the configured selector")

    dashboards = mixin_dashboards(config)
    for name, d in dashboards.items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        for var in ("job", "instance"):
            v = variables.get(var)
            for query in (v or {}).get("definition"), (v or {}).get("query", {}).get("query"):
                if not query or f"cloudconnexa_up{{{mine}" not in query:
                    problems.append(f"{name}: ${var} query {query!r} does not use the selector {mine}")
        if DEFAULT_SELECTOR in json.dumps(d, ensure_ascii=False).replace('\\"', '"'):
            problems.append(f"{name}: still uses the default selector somewhere")
    print(f"_config {config}: {n_selecting} rules select by it; {len(dashboards)} dashboards checked")
    if problems:
        print("\n".join(problems))
    return 1 if problems else 0


def check_readme_example():
    """The README's mixin example, run as a user would: the mixin vendored alone (as
    jsonnet-bundler does), the example's .libsonnet file, and the commands of the shell block that
    follows it; they must give a rule file with every rule, the example's selector in the `up`
    rules, and every dashboard."""
    import shutil
    import tempfile

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    m = re.search(r"```jsonnet\n(// (\S+\.libsonnet)[^\n]*\n.*?)```\s*```sh\n(.*?)```", readme, re.S)
    if not m:
        print("README.md has no ```jsonnet block opening with // NAME.libsonnet and followed by a ```sh block")
        return 1
    library, name, commands = m.group(1), m.group(2), m.group(3)
    imported = re.search(r"import '(.+?)/mixin\.libsonnet'", library)
    problems = []
    with tempfile.TemporaryDirectory() as work:
        shutil.copytree(os.path.join(ROOT, MIXIN), os.path.join(work, "vendor", imported.group(1)))
        with open(os.path.join(work, name), "w", encoding="utf-8") as f:
            f.write(library)
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=work, capture_output=True, text=True)
        if run.returncode != 0:
            print(f"the README's commands failed:\n{commands}\n{run.stderr}")
            return 1
        rules_file = os.path.join(work, "cloudconnexa.rules.yml")
        names = sorted(n for n in os.listdir(os.path.join(ROOT, DASHBOARDS)) if n.endswith(".json"))
        made = sorted(os.listdir(os.path.join(work, "dashboards"))) if os.path.isdir(os.path.join(work, "dashboards")) else []
        if made != names:
            problems.append(f"it writes the dashboards {made}, expected {names}")
        if not os.path.exists(rules_file):
            problems.append("it writes no cloudconnexa.rules.yml")
        else:
            with open(rules_file, encoding="utf-8") as f:
                groups = yaml.safe_load(f)["groups"]
            n = sum(len(g["rules"]) for g in groups)
            if n != sum(len(g["rules"]) for g in mixin_alerts()["groups"]):
                problems.append(f"its rule file has {n} rules")
            if not any('job="cloudconnexa-exporter"' in r["expr"] for g in groups for r in g["rules"]):
                problems.append("the example's selector reaches no rule")
            check = subprocess.run(["promtool", "check", "rules", rules_file], capture_output=True, text=True)
            if check.returncode != 0:
                problems.append(check.stdout + check.stderr)
    print(f"README's mixin example: {name} and {len(commands.strip().splitlines())} lines of shell")
    if problems:
        print("\n".join(problems))
    return 1 if problems else 0


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    what = argv[1]
    if what == "write":
        return write(force="--force" in argv[2:])
    if what == "check":
        return check()
    if what == "mixin":
        return check_mixin()
    if what == "mixin-config":
        return check_mixin_config()
    if what == "readme-example":
        return check_readme_example()
    print(f"unknown command {what}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
