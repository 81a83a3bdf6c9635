#!/usr/bin/env python3
"""Checks of the rendered Kubernetes manifests and of the container image (used by
scripts/check-kubernetes.sh). Each FILE is the output of `kubectl kustomize` for one
kustomization.

    k8scheck.py schemas FILE...           every object against Kubernetes' own schemas
                                          (kubernetes-validate, strict) or, for ServiceMonitor and
                                          PrometheusRule, the Prometheus Operator's CRD schemas
                                          made strict: an unknown field is an error, as with the
                                          API server's strict field validation
    k8scheck.py schemas-selftest FILE     those validations reject broken copies of FILE's objects
    k8scheck.py crds-in-step DIR          the vendored CRDs are the ones in DIR (when DIR exists)
    k8scheck.py rules FILE RULES OUT      FILE's one PrometheusRule holds exactly RULES' groups;
                                          writes its groups to OUT as a rule file for promtool
    k8scheck.py exporter FILE...          the exporter's Deployment: one replica, Recreate, probes
                                          on their own port, no secret in a manifest, resources,
                                          and its Service, NetworkPolicy and ServiceMonitor
    k8scheck.py exporter-selftest FILE    those checks refuse broken copies of FILE's tenant exporter
    k8scheck.py dashboards FILE DIR       FILE's dashboard ConfigMaps are DIR's dashboards, labelled
                                          for Grafana's sidecar, and small enough for kubectl apply
    k8scheck.py flags BINARY FILE...      every flag and CLOUDCONNEXA_ variable the manifests give
                                          the exporter is one BINARY --help lists
    k8scheck.py add-tenant DIR NAME       in DIR (a copy of deploy/kubernetes), adds tenant NAME the
                                          way the README says
    k8scheck.py tenants FILE N            FILE runs N tenants side by side without sharing a name,
                                          a Secret or a scrape target
    k8scheck.py set-image DIR IMAGE       in overlay DIR (a copy), what `kustomize edit set image
                                          cloudconnexa_exporter=IMAGE` does
    k8scheck.py image-is FILE IMAGE       FILE's Deployment runs IMAGE
    k8scheck.py image BINARY DOCKERFILE FILE...
                                          the binary needs no shared library beyond what the
                                          Dockerfile's runtime image ships, and the image's user
                                          and port are the Deployment's
    k8scheck.py image-selftest BINARY DOCKERFILE FILE...
                                          that check refuses a binary needing OpenSSL and a
                                          Dockerfile whose user, port or base image differ

Prints what is wrong and exits 1, or exits 0.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

from podsecurity import uncaught

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CRD_DIR = os.path.join(ROOT, "tests", "fixtures", "prometheus-operator-crds")
EXPORTER = "cloudconnexa-exporter"
IMAGE_NAME = "cloudconnexa_exporter"
# The measured bound of a 5,000-user tenant's peak resident memory over weeks (Deployment's
# comment, BENCHMARKS.md): the memory request must cover it.
MEMORY_BOUND_MIB = 48
# kubectl apply (client side) keeps the whole object in an annotation limited to 256 KiB.
ANNOTATION_LIMIT = 262144


def load(path):
    with open(path, encoding="utf-8") as f:
        return [obj for obj in yaml.safe_load_all(f) if obj]


def load_all(paths):
    return [(path, obj) for path in paths for obj in load(path)]


def name_of(obj):
    ns = obj.get("metadata", {}).get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{obj.get('metadata', {}).get('name')}"


def report(summary, problems):
    print(summary)
    if problems:
        print("\n".join(problems))
    return 1 if problems else 0


# --- schemas -----------------------------------------------------------------------------------


def kubernetes_version():
    import kubernetes_validate

    return os.environ.get("KUBERNETES_VERSION") or kubernetes_validate.latest_version()


def strict(schema, in_junctor=False):
    """A CRD's openAPIV3Schema as a JSON schema that refuses unknown fields: every object that
    lists `properties` gets `additionalProperties: false` unless it keeps unknown fields
    (x-kubernetes-preserve-unknown-fields) or says what else it takes. Branches of anyOf,
    allOf, oneOf and not only add constraints to their parent (structural schemas), so they are
    left open. `nullable` becomes a null type."""
    if not isinstance(schema, dict):
        return schema
    s = dict(schema)
    if s.pop("nullable", False) and isinstance(s.get("type"), str):
        s["type"] = [s["type"], "null"]
    if isinstance(s.get("properties"), dict):
        s["properties"] = {k: strict(v) for k, v in s["properties"].items()}
    if isinstance(s.get("items"), dict):
        s["items"] = strict(s["items"])
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = strict(s["additionalProperties"])
    for junctor in ("anyOf", "allOf", "oneOf"):
        if junctor in s:
            s[junctor] = [strict(b, in_junctor=True) for b in s[junctor]]
    if "not" in s:
        s["not"] = strict(s["not"], in_junctor=True)
    if (
        "properties" in s
        and not in_junctor
        and not s.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in s
    ):
        s["additionalProperties"] = False
    return s


def crd_schemas():
    """(apiVersion, kind) -> strict JSON schema, from the vendored CRDs."""
    schemas = {}
    for name in sorted(os.listdir(CRD_DIR)):
        for crd in load(os.path.join(CRD_DIR, name)):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schemas[(f"{group}/{version['name']}", kind)] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def object_meta_validator(version):
    """Kubernetes' own ObjectMeta schema (strict), for the metadata of custom resources, which
    their CRD schemas leave open and the API server checks as ObjectMeta."""
    import jsonschema
    import kubernetes_validate.utils as kv
    from referencing import Registry, Resource

    v = [x for x in kv.all_versions() if kv.major_minor(x) <= kv.major_minor(version)][-1]
    defs = kv.schema_contents(f"kubernetes-json-schema/v{v}-local-strict/_definitions.json", version)
    registry = Registry().with_resource(defs["$id"], Resource.from_contents(defs))
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"{defs['$id']}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    }
    return jsonschema.Draft202012Validator(schema, registry=registry)


class Validator:
    def __init__(self, version):
        import jsonschema

        self.version = version
        self.crds = {key: jsonschema.Draft4Validator(s) for key, s in crd_schemas().items()}
        self.meta = object_meta_validator(version)

    def problems(self, obj):
        """What is wrong with one object, as text; empty when it validates."""
        import kubernetes_validate

        key = (obj.get("apiVersion"), obj.get("kind"))
        if key in self.crds:
            errors = list(self.crds[key].iter_errors(obj))
            errors += [e for e in self.meta.iter_errors(obj.get("metadata", {}))]
            return [f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in errors]
        try:
            kubernetes_validate.validate(obj, self.version, strict=True)
        except kubernetes_validate.ValidationError as e:
            return [f"{'.'.join(str(p) for p in e.path) or '(top)'}: {e.message}"]
        except kubernetes_validate.SchemaNotFoundError as e:
            return [f"no schema for it: {e.message}"]
        return []


def schemas(paths):
    import kubernetes_validate

    version = kubernetes_version()
    validator = Validator(version)
    problems, counts = [], {}
    for path, obj in load_all(paths):
        kind = "CRD" if (obj.get("apiVersion"), obj.get("kind")) in validator.crds else "built-in"
        counts[kind] = counts.get(kind, 0) + 1
        problems += [f"{path}: {name_of(obj)}: {p}" for p in validator.problems(obj)]
    summary = (
        f"Kubernetes {version} (kubernetes-validate {kubernetes_validate.__version__}, strict): "
        f"{counts.get('built-in', 0)} objects; Prometheus Operator CRDs (strict): {counts.get('CRD', 0)} objects"
    )
    return report(summary, problems)


def first(objs, kind):
    return next(o for o in objs if o["kind"] == kind)


def container0(objs):
    return first(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


SCHEMA_BREAKAGES = [
    ("an unknown field in a container", lambda o: container0(o).update(unknownField=1)),
    ("replicas as text", lambda o: first(o, "Deployment")["spec"].update(replicas="one")),
    ("an unknown field in the Service's port", lambda o: first(o, "Service")["spec"]["ports"][0].update(nodeport=1)),
    ("a misspelt NetworkPolicy field", lambda o: first(o, "NetworkPolicy")["spec"].update(ingres=[])),
    ("an unknown field in the ServiceMonitor's endpoint",
     lambda o: first(o, "ServiceMonitor")["spec"]["endpoints"][0].update(intervall="30s")),
    ("a malformed ServiceMonitor interval",
     lambda o: first(o, "ServiceMonitor")["spec"]["endpoints"][0].update(interval="30 seconds")),
    ("a misspelt field in the ServiceMonitor's metadata",
     lambda o: first(o, "ServiceMonitor")["metadata"].update(lables={"a": "b"})),
    ("an unknown field in a PrometheusRule rule",
     lambda o: first(o, "PrometheusRule")["spec"]["groups"][0]["rules"][0].update(expresion="up")),
    ("a PrometheusRule `for` that is a number",
     lambda o: first(o, "PrometheusRule")["spec"]["groups"][0]["rules"][0].update({"for": 5})),
    ("a kind nobody knows", lambda o: o.append({"apiVersion": "v1", "kind": "Frobnicator", "metadata": {"name": "x"}})),
]


def schemas_selftest(path):
    validator = Validator(kubernetes_version())
    good = load(path)
    problems = [f"the unbroken {name_of(o)} fails: {p}" for o in good for p in validator.problems(o)]
    for what, breakage in SCHEMA_BREAKAGES:
        objs = copy.deepcopy(good)
        breakage(objs)
        if not any(validator.problems(o) for o in objs):
            problems.append(f"{what}: accepted")
    return report(f"{len(SCHEMA_BREAKAGES)} broken copies, each must be refused", problems)


def crds_in_step(reference_dir):
    if not os.path.isdir(reference_dir):
        print(f"{reference_dir} is not here: nothing to compare the vendored CRDs with")
        return 0
    problems = []
    for name in sorted(os.listdir(CRD_DIR)):
        ours = load(os.path.join(CRD_DIR, name))
        theirs_path = os.path.join(reference_dir, name)
        if not os.path.exists(theirs_path):
            problems.append(f"{name}: not in {reference_dir}")
        elif load(theirs_path) != ours:
            problems.append(f"{name}: differs from {theirs_path}; copy it into {os.path.relpath(CRD_DIR, ROOT)}")
    return report(f"vendored CRDs compared with {reference_dir}", problems)


# --- the PrometheusRule --------------------------------------------------------------------------


def rules(path, rules_file, out):
    objs = [o for o in load(path) if o["kind"] == "PrometheusRule"]
    if len(objs) != 1:
        return report(f"{path}: {len(objs)} PrometheusRules, expected exactly one", ["wrong count"])
    with open(rules_file, encoding="utf-8") as f:
        expected = yaml.safe_load(f)["groups"]
    groups = objs[0]["spec"]["groups"]
    problems = []
    if groups != expected:
        problems.append(f"{name_of(objs[0])}: its groups differ from {rules_file}")
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    n = sum(len(g["rules"]) for g in groups)
    return report(f"{name_of(objs[0])}: {n} rules in {len(groups)} groups", problems)


# --- the exporter's objects --------------------------------------------------------------------


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def flag_value(args, flag):
    for a in args:
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def port_of(address):
    return int(address.rsplit(":", 1)[1]) if address and ":" in address else None


def mebibytes(quantity):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(quantity))
    if not m:
        return None
    return int(m.group(1)) * {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, None: 1 / 1048576}[m.group(2)]


def check_deployment(d):
    """The exporter's Deployment on its own."""
    problems = []
    spec = d["spec"]
    pod = spec["template"]["spec"]
    if spec.get("replicas") != 1:
        problems.append(f"replicas is {spec.get('replicas')}, must be 1: two pollers spend the API budget twice")
    if (spec.get("strategy") or {}).get("type") != "Recreate":
        problems.append("strategy is not Recreate: a rolling update runs two pollers at once")
    exporters = [c for c in pod["containers"] if c.get("image", "").split("/")[-1].split(":")[0] == IMAGE_NAME]
    if len(exporters) != 1:
        return problems + [f"{len(exporters)} containers run the {IMAGE_NAME} image, expected 1"]
    c = exporters[0]
    args = c.get("args") or []
    if c.get("command"):
        problems.append("sets `command`: the image's entrypoint (the exporter) must stay")
    env = {e["name"]: e for e in c.get("env") or []}
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}

    # Ports: metrics on --web.listen-address, probes on --web.probe-listen-address.
    metrics_port = port_of(flag_value(args, "--web.listen-address"))
    probe_port = port_of(flag_value(args, "--web.probe-listen-address"))
    if metrics_port is None or ports.get("metrics") != metrics_port:
        problems.append(f"port `metrics` ({ports.get('metrics')}) is not --web.listen-address's ({metrics_port})")
    if probe_port is None or ports.get("probes") != probe_port:
        problems.append(f"port `probes` ({ports.get('probes')}) is not --web.probe-listen-address's ({probe_port})")
    if probe_port is not None and probe_port == metrics_port:
        problems.append("the probes share the metrics port, where --web.config.file's TLS and auth apply")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet")
        if not get:
            problems.append(f"no {probe} with httpGet")
            continue
        port = ports.get(get.get("port"), get.get("port"))
        if get.get("path") != path:
            problems.append(f"{probe} asks {get.get('path')}, not {path}")
        if port != probe_port or probe_port is None:
            problems.append(f"{probe} uses port {get.get('port')}, not the probe port ({probe_port})")
        if (get.get("scheme") or "HTTP") != "HTTP" or get.get("httpHeaders"):
            problems.append(f"{probe}: the probe port is plain HTTP without credentials")

    # Secrets: never inline; the client id from a Secret, the secret as a file from a Secret.
    for name in ("CLOUDCONNEXA_CLIENT_SECRET", "CLOUDCONNEXA_CLIENT_ID"):
        if "value" in env.get(name, {}):
            problems.append(f"{name} is written in the manifest")
    if "CLOUDCONNEXA_CLIENT_SECRET" in env:
        problems.append("CLOUDCONNEXA_CLIENT_SECRET is set: pass the secret as a file (CLOUDCONNEXA_CLIENT_SECRET_FILE)")
    if any(re.match(r"--cloudconnexa\.client-(id|secret)(=|$)", a) for a in args):
        problems.append("a credential is passed as a flag, visible in the manifest and the process list")
    demo = (env.get("CLOUDCONNEXA_EXPORTER_DEMO", {}).get("value") in ("true", "1")) or "--demo" in args
    if not demo:
        if not (env.get("CLOUDCONNEXA_CLOUD_ID") or env.get("CLOUDCONNEXA_URL")):
            problems.append("no tenant: neither CLOUDCONNEXA_CLOUD_ID nor CLOUDCONNEXA_URL, and not --demo")
        ref = (env.get("CLOUDCONNEXA_CLIENT_ID", {}).get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            problems.append("CLOUDCONNEXA_CLIENT_ID does not come from a Secret (secretKeyRef)")
        secret_file = (env.get("CLOUDCONNEXA_CLIENT_SECRET_FILE") or {}).get("value", "")
        mounts = [m for m in c.get("volumeMounts") or [] if secret_file.startswith(m["mountPath"].rstrip("/") + "/")]
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        if len(mounts) != 1:
            problems.append(f"CLOUDCONNEXA_CLIENT_SECRET_FILE ({secret_file!r}) is not inside one volume mount")
        else:
            m = mounts[0]
            secret = (volumes.get(m["name"]) or {}).get("secret")
            if not m.get("readOnly"):
                problems.append(f"the secret's mount {m['mountPath']} is not read-only")
            if not secret:
                problems.append(f"the volume {m['name']} holding the secret file is not a Secret")
            else:
                keys = {i["path"]: i["key"] for i in secret.get("items") or []}
                rel = secret_file[len(m["mountPath"].rstrip("/")) + 1:]
                if keys and keys.get(rel) != "client-secret":
                    problems.append(f"{secret_file} is not the Secret's key client-secret")
                if ref and secret.get("secretName") != ref.get("name"):
                    problems.append("the client id and the client secret come from different Secrets")

    # Resources, sized from the measured memory.
    res = c.get("resources") or {}
    req_mem = mebibytes((res.get("requests") or {}).get("memory"))
    lim_mem = mebibytes((res.get("limits") or {}).get("memory"))
    if not (res.get("requests") or {}).get("cpu"):
        problems.append("no CPU request")
    if req_mem is None or req_mem < MEMORY_BOUND_MIB:
        problems.append(f"memory request {req_mem} MiB is below the measured bound of {MEMORY_BOUND_MIB} MiB")
    if lim_mem is None or req_mem is None or lim_mem < req_mem:
        problems.append(f"memory limit {lim_mem} MiB is missing or below the request")
    return problems


def check_exporter(objs):
    """One exporter: its Deployment, and the Service, NetworkPolicy, ServiceMonitor and
    ServiceAccount that go with it."""
    problems = []
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    if by_kind.get("Secret"):
        problems.append(f"a Secret is in the manifests ({[name_of(s) for s in by_kind['Secret']]}): credentials must not be")
    deployments = [d for d in by_kind.get("Deployment", []) if EXPORTER in d["metadata"]["name"]]
    if not deployments:
        return ["no exporter Deployment"]
    for d in deployments:
        where = name_of(d)
        problems += [f"{where}: {p}" for p in check_deployment(d)]
        pod = d["spec"]["template"]
        pod_labels = pod["metadata"].get("labels") or {}
        ns = d["metadata"].get("namespace")
        same_ns = lambda o: o["metadata"].get("namespace") == ns  # noqa: E731
        c = next((c for c in pod["spec"]["containers"] if IMAGE_NAME in c.get("image", "")), {})
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}

        sa = pod["spec"].get("serviceAccountName")
        sas = [s for s in by_kind.get("ServiceAccount", []) if s["metadata"]["name"] == sa and same_ns(s)]
        if not sas:
            problems.append(f"{where}: its ServiceAccount {sa} is not in the manifests")
        elif sas[0].get("automountServiceAccountToken") is not False:
            problems.append(f"{name_of(sas[0])}: automountServiceAccountToken is not false")

        services = [s for s in by_kind.get("Service", []) if same_ns(s) and selects(s["spec"].get("selector"), pod_labels)]
        if len(services) != 1:
            problems.append(f"{where}: {len(services)} Services select its pods, expected 1")
            continue
        svc = services[0]
        svc_ports = svc["spec"].get("ports") or []
        if [(p.get("name"), ports.get(p.get("targetPort"), p.get("targetPort"))) for p in svc_ports] != [
            ("metrics", ports.get("metrics"))
        ]:
            problems.append(f"{name_of(svc)}: must expose exactly the metrics port, got {svc_ports}")

        policies = [n for n in by_kind.get("NetworkPolicy", []) if same_ns(n)
                    and selects(n["spec"]["podSelector"].get("matchLabels"), pod_labels)]
        if len(policies) != 1:
            problems.append(f"{where}: {len(policies)} NetworkPolicies select its pods, expected 1")
        else:
            np = policies[0]["spec"]
            if sorted(np.get("policyTypes") or []) != ["Egress", "Ingress"]:
                problems.append(f"{name_of(policies[0])}: policyTypes must be Ingress and Egress")
            ingress = [(p.get("protocol", "TCP"), ports.get(p.get("port"), p.get("port")))
                       for rule in np.get("ingress") or [] for p in rule.get("ports") or [None] if p]
            if any(not rule.get("ports") for rule in np.get("ingress") or []) or ingress != [("TCP", ports.get("metrics"))]:
                problems.append(f"{name_of(policies[0])}: ingress must allow the metrics port only, got {ingress}")
            egress = sorted((p.get("protocol", "TCP"), p.get("port"))
                            for rule in np.get("egress") or [] for p in rule.get("ports") or [] if p)
            if any(not rule.get("ports") for rule in np.get("egress") or []) or egress != [
                ("TCP", 53), ("TCP", 443), ("UDP", 53)
            ]:
                problems.append(f"{name_of(policies[0])}: egress must be DNS and HTTPS only, got {egress}")

        monitors = [m for m in by_kind.get("ServiceMonitor", []) if same_ns(m)
                    and selects(m["spec"]["selector"].get("matchLabels"), svc["metadata"].get("labels") or {})]
        if len(monitors) != 1:
            problems.append(f"{where}: {len(monitors)} ServiceMonitors select its Service, expected 1")
        else:
            endpoints = monitors[0]["spec"].get("endpoints") or []
            if [e.get("port") for e in endpoints] != ["metrics"]:
                problems.append(f"{name_of(monitors[0])}: must scrape the Service's `metrics` port, got {endpoints}")
    return problems


def exporter(paths):
    problems, n = [], 0
    for path in paths:
        objs = load(path)
        n += sum(1 for o in objs if o["kind"] == "Deployment")
        problems += [f"{path}: {p}" for p in check_exporter(objs)]
    return report(f"{n} exporter Deployments with their Service, NetworkPolicy and ServiceMonitor", problems)


def pod_of(objs):
    return first(objs, "Deployment")["spec"]["template"]["spec"]


def env_of(objs, name):
    return next(e for e in container0(objs)["env"] if e["name"] == name)


def inline_client_id(objs):
    e = env_of(objs, "CLOUDCONNEXA_CLIENT_ID")
    e.pop("valueFrom")
    e["value"] = "abc"


def secret_file_from_empty_dir(objs):
    volume = pod_of(objs)["volumes"][0]
    volume.pop("secret")
    volume["emptyDir"] = {}


def without(items, pred):
    return [x for x in items if not pred(x)]


# (what is broken, how, a word the problem must contain)
EXPORTER_BREAKAGES = [
    ("two replicas", lambda o: first(o, "Deployment")["spec"].update(replicas=2), "replicas"),
    ("a rolling update", lambda o: first(o, "Deployment")["spec"].update(strategy={"type": "RollingUpdate"}),
     "Recreate"),
    ("the liveness probe on the metrics port",
     lambda o: container0(o)["livenessProbe"]["httpGet"].update(port="metrics"), "livenessProbe uses port"),
    ("the readiness probe asking /healthz",
     lambda o: container0(o)["readinessProbe"]["httpGet"].update(path="/healthz"), "readinessProbe asks"),
    ("no readiness probe", lambda o: container0(o).pop("readinessProbe"), "no readinessProbe"),
    ("the probe flag gone", lambda o: container0(o).update(
        args=without(container0(o)["args"], lambda a: a.startswith("--web.probe-listen-address"))), "probe"),
    ("the client id written in the manifest", inline_client_id, "CLOUDCONNEXA_CLIENT_ID"),
    ("the client secret as a variable", lambda o: container0(o)["env"].append(
        {"name": "CLOUDCONNEXA_CLIENT_SECRET", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}}),
     "CLOUDCONNEXA_CLIENT_SECRET is set"),
    ("the client secret as a flag", lambda o: container0(o)["args"].append("--cloudconnexa.client-secret=abc"),
     "as a flag"),
    ("a Secret among the manifests",
     lambda o: o.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}}),
     "a Secret is in the manifests"),
    ("the secret file on a writable mount", lambda o: container0(o)["volumeMounts"][0].update(readOnly=False),
     "not read-only"),
    ("the secret file from an emptyDir", secret_file_from_empty_dir, "is not a Secret"),
    ("no tenant", lambda o: container0(o).update(
        env=without(container0(o)["env"], lambda e: e["name"] == "CLOUDCONNEXA_CLOUD_ID")), "no tenant"),
    ("a memory request below the measured bound",
     lambda o: container0(o)["resources"]["requests"].update(memory="32Mi"), "below the measured bound"),
    ("no memory limit", lambda o: container0(o)["resources"].pop("limits"), "memory limit"),
    ("the Service exposing the probe port", lambda o: first(o, "Service")["spec"]["ports"].append(
        {"name": "probes", "port": 9840, "targetPort": "probes"}), "exactly the metrics port"),
    ("the NetworkPolicy letting in the probe port", lambda o: first(o, "NetworkPolicy")["spec"]["ingress"][0][
        "ports"].append({"protocol": "TCP", "port": 9840}), "metrics port only"),
    ("the NetworkPolicy letting in every port", lambda o: first(o, "NetworkPolicy")["spec"].update(ingress=[{}]),
     "metrics port only"),
    ("the NetworkPolicy letting out anything", lambda o: first(o, "NetworkPolicy")["spec"]["egress"].append({}),
     "DNS and HTTPS only"),
    ("the ServiceMonitor selecting nothing of ours",
     lambda o: first(o, "ServiceMonitor")["spec"]["selector"].update(matchLabels={"app": "other"}),
     "0 ServiceMonitors"),
    ("a token-mounting ServiceAccount", lambda o: first(o, "ServiceAccount").pop("automountServiceAccountToken"),
     "automountServiceAccountToken"),
]


def exporter_selftest(path):
    """check_exporter refuses broken copies of a tenant's objects (path: a tenant's render)."""
    good = load(path)
    problems = [f"the unbroken objects fail: {p}" for p in check_exporter(good)]
    problems += uncaught(good, EXPORTER_BREAKAGES, check_exporter)
    return report(f"{len(EXPORTER_BREAKAGES)} broken copies, each must be refused", problems)


def dashboards(path, folder):
    problems = []
    cms = [o for o in load(path) if o["kind"] == "ConfigMap" and (o["metadata"].get("labels") or {}).get("grafana_dashboard")]
    found = {}
    for cm in cms:
        if cm["metadata"]["labels"]["grafana_dashboard"] != "1":
            problems.append(f"{name_of(cm)}: grafana_dashboard is not \"1\"")
        for key, text in (cm.get("data") or {}).items():
            found[key] = json.loads(text)
        size = len(json.dumps(cm, separators=(",", ":")))
        if size > ANNOTATION_LIMIT - 4096:
            problems.append(f"{name_of(cm)}: {size} bytes, too big for kubectl apply's last-applied annotation")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    if sorted(found) != names:
        problems.append(f"dashboard ConfigMaps hold {sorted(found)}, {folder} has {names}")
    for name in set(found) & set(names):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            if json.load(f) != found[name]:
                problems.append(f"the ConfigMap's {name} differs from {folder}/{name}")
    return report(f"{len(cms)} dashboard ConfigMaps", problems)


# --- flags and variables the exporter knows ------------------------------------------------------


def known_flags(binary):
    text = subprocess.run([binary, "--help"], check=True, capture_output=True, text=True).stdout
    flags = set(re.findall(r"(?m)^\s+(?:-\w, )?(--[a-z][a-z0-9.-]*)", text))
    envs = set(re.findall(r"\[env: ([A-Z0-9_]+)", text))
    return flags, envs


def flags(binary, paths):
    known, envs = known_flags(binary)
    problems, n = [], 0
    for path, obj in load_all(paths):
        if obj["kind"] != "Deployment":
            continue
        for c in obj["spec"]["template"]["spec"]["containers"]:
            for a in c.get("args") or []:
                n += 1
                flag = a.split("=", 1)[0]
                if flag not in known:
                    problems.append(f"{path}: {name_of(obj)}: {flag} is not a flag of the exporter")
            for e in c.get("env") or []:
                n += 1
                if e["name"].startswith("CLOUDCONNEXA_") and e["name"] not in envs:
                    problems.append(f"{path}: {name_of(obj)}: {e['name']} is not a variable the exporter reads")
    return report(f"{n} flags and variables checked against {binary} --help", problems)


# --- tenants side by side ------------------------------------------------------------------------


def add_tenant(folder, name):
    """What the README tells a user to do for a second tenant: copy acme/, rename, list it."""
    tenants = os.path.join(folder, "overlays", "tenants")
    shutil.copytree(os.path.join(tenants, "acme"), os.path.join(tenants, name))
    for f in os.listdir(os.path.join(tenants, name)):
        path = os.path.join(tenants, name, f)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text.replace("acme", name))
    kpath = os.path.join(tenants, "kustomization.yaml")
    with open(kpath, encoding="utf-8") as fh:
        k = yaml.safe_load(fh)
    k["resources"].append(name)
    with open(kpath, "w", encoding="utf-8") as fh:
        yaml.safe_dump(k, fh, sort_keys=False)
    return 0


def tenants(path, count):
    objs = load(path)
    problems = check_exporter(objs)
    names = [name_of(o) for o in objs]
    problems += [f"{n} appears twice" for n in sorted(set(names)) if names.count(n) > 1]
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    if len(deployments) != count:
        problems.append(f"{len(deployments)} exporter Deployments, expected {count}")
    for kind in ("PrometheusRule",):
        if sum(1 for o in objs if o["kind"] == kind) != 1:
            problems.append(f"the {kind} must be there once for all tenants")
    seen = {}
    for d in deployments:
        c = d["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in c.get("env") or []}
        tenant = env.get("CLOUDCONNEXA_CLOUD_ID", {}).get("value")
        secret = ((env.get("CLOUDCONNEXA_CLIENT_ID", {}).get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
        volumes = {v.get("secret", {}).get("secretName") for v in d["spec"]["template"]["spec"].get("volumes") or []}
        for what, value in (("tenant", tenant), ("Secret", secret), ("selector", json.dumps(d["spec"]["selector"]))):
            if value in seen.get(what, set()):
                problems.append(f"{name_of(d)}: shares its {what} {value} with another tenant")
            seen.setdefault(what, set()).add(value)
        if not tenant or tenant not in d["metadata"]["name"] or not secret or tenant not in secret:
            problems.append(f"{name_of(d)}: tenant {tenant}, Secret {secret}: names do not follow the tenant")
        if volumes != {secret}:
            problems.append(f"{name_of(d)}: the secret file comes from {volumes}, the client id from {secret}")
    return report(f"{len(deployments)} tenants side by side", problems)


def set_image(folder, image):
    """What `kustomize edit set image cloudconnexa_exporter=IMAGE` does to a kustomization."""
    path = os.path.join(folder, "kustomization.yaml")
    with open(path, encoding="utf-8") as f:
        k = yaml.safe_load(f)
    name, _, tag = image.rpartition(":")
    entry = {"name": IMAGE_NAME, "newName": name, "newTag": tag}
    k["images"] = [i for i in k.get("images") or [] if i["name"] != IMAGE_NAME] + [entry]
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(k, f, sort_keys=False)
    return 0


def image_is(path, image):
    got = [c["image"] for o in load(path) if o["kind"] == "Deployment" for c in o["spec"]["template"]["spec"]["containers"]]
    return report(f"{path}: images {got}", [] if got and all(g == image for g in got) else [f"expected {image}"])


# --- the container image -----------------------------------------------------------------------

# What gcr.io/distroless/cc-debian12 provides to a dynamically linked binary: its base image's
# glibc (Debian 12's libc6, 2.36: libc, libm, libpthread, libdl, librt, libutil, libresolv and
# the dynamic loader) plus libgcc-s1 (libgcc_s), which is what makes it the "cc" variant
# (github.com/GoogleContainerTools/distroless, base/README.md and cc/README.md). No libssl, no
# libstdc++ is counted on.
DISTROLESS_CC_LIBS = {
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libresolv.so.2",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", "libgcc_s.so.1",
}
DISTROLESS_LOADERS = {"/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"}
DISTROLESS_GLIBC = (2, 36)


def dockerfile_runtime(path):
    """USER and EXPOSE of the Dockerfile's last stage."""
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    last = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    user = [line.split(None, 1)[1] for line in lines[last:] if line.upper().startswith("USER ")]
    exposed = [p for line in lines[last:] if line.upper().startswith("EXPOSE ") for p in line.split()[1:]]
    return lines[last].split()[1], (user[-1] if user else None), [int(p.split("/")[0]) for p in exposed]


def image_problems(binary, dockerfile, paths):
    """(summary, problems) of the image check."""
    problems = []
    dyn = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
    extra = sorted(set(needed) - DISTROLESS_CC_LIBS)
    if extra:
        problems.append(f"{binary} needs {extra}, which gcr.io/distroless/cc-debian12 does not ship")
    headers = subprocess.run(["readelf", "-lV", binary], check=True, capture_output=True, text=True).stdout
    loader = re.findall(r"Requesting program interpreter: (\S+?)\]", headers)
    if loader and loader[0] not in DISTROLESS_LOADERS:
        problems.append(f"{binary} asks for the loader {loader[0]}, not the image's")
    glibc = sorted({tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", headers)})
    if glibc and glibc[-1] > DISTROLESS_GLIBC:
        problems.append(f"{binary} needs glibc {'.'.join(map(str, glibc[-1]))}, the image has 2.36")

    base, user, exposed = dockerfile_runtime(dockerfile)
    if not base.startswith("gcr.io/distroless/cc-debian12"):
        problems.append(f"the runtime stage is {base}: the library list above is distroless cc-debian12's")
    uid, _, gid = (user or "").partition(":")
    for path, obj in load_all(paths):
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        sc = pod.get("securityContext") or {}
        for c in pod["containers"]:
            csc = c.get("securityContext") or {}
            run_as = csc.get("runAsUser", sc.get("runAsUser"))
            run_group = csc.get("runAsGroup", sc.get("runAsGroup"))
            where = f"{path}: {name_of(obj)}"
            if not uid.isdigit() or run_as != int(uid):
                problems.append(f"{where}: runAsUser {run_as} is not the image's USER {user}")
            if gid and run_group is not None and run_group != int(gid):
                problems.append(f"{where}: runAsGroup {run_group} is not the image's group {gid}")
            metrics = [p["containerPort"] for p in c.get("ports") or [] if p.get("name") == "metrics"]
            if metrics != exposed[:1] or not exposed:
                problems.append(f"{where}: metrics port {metrics} is not the image's EXPOSE {exposed}")
    summary = (f"{binary}: needs {needed}, glibc up to {'.'.join(map(str, glibc[-1])) if glibc else '?'}; "
               f"runtime image {base}, USER {user}, EXPOSE {exposed}")
    return summary, problems


def image(binary, dockerfile, paths):
    return report(*image_problems(binary, dockerfile, paths))


def image_selftest(binary, dockerfile, paths):
    """The image check refuses a binary that needs OpenSSL, and a Dockerfile whose user or port
    is not the Deployment's."""
    import tempfile

    problems = []
    openssl = shutil.which("openssl")
    _, found = image_problems(openssl, dockerfile, paths)
    if not any("libssl" in p or "libcrypto" in p for p in found):
        problems.append(f"{openssl}, which needs libssl: not refused ({found})")
    with open(dockerfile, encoding="utf-8") as f:
        text = f.read()
    for what, old, new, word in (
        ("USER 1000", "USER 65532:65532", "USER 1000:1000", "runAsUser"),
        ("EXPOSE 8080", "EXPOSE 9839", "EXPOSE 8080", "EXPOSE"),
        ("another runtime image", "FROM gcr.io/distroless/cc-debian12:nonroot", "FROM debian:12-slim", "runtime stage"),
    ):
        if old not in text:
            problems.append(f"{dockerfile} has no {old!r} to break")
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile", delete=False) as f:
            f.write(text.replace(old, new))
        try:
            _, found = image_problems(binary, f.name, paths)
        finally:
            os.remove(f.name)
        if not any(word in p for p in found):
            problems.append(f"a Dockerfile with {what}: not refused ({found})")
    return report("4 broken variants, each must be refused", problems)




def main(argv):
    commands = {
        "schemas": (lambda a: schemas(a), 1),
        "schemas-selftest": (lambda a: schemas_selftest(a[0]), 1),
        "crds-in-step": (lambda a: crds_in_step(a[0]), 1),
        "rules": (lambda a: rules(a[0], a[1], a[2]), 3),
        "exporter": (lambda a: exporter(a), 1),
        "exporter-selftest": (lambda a: exporter_selftest(a[0]), 1),
        "dashboards": (lambda a: dashboards(a[0], a[1]), 2),
        "flags": (lambda a: flags(a[0], a[1:]), 2),
        "add-tenant": (lambda a: add_tenant(a[0], a[1]), 2),
        "tenants": (lambda a: tenants(a[0], int(a[1])), 2),
        "set-image": (lambda a: set_image(a[0], a[1]), 2),
        "image-is": (lambda a: image_is(a[0], a[1]), 2),
        "image": (lambda a: image(a[0], a[1], a[2:]), 3),
        "image-selftest": (lambda a: image_selftest(a[0], a[1], a[2:]), 3),
    }
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 < commands[argv[1]][1]:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return commands[argv[1]][0](argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
