#!/usr/bin/env python3
"""The restricted Pod Security Standard, checked on rendered manifests (used by
scripts/check-kubernetes.sh), plus what this project asks on top: a read-only root filesystem
and no service account token.

    podsecurity.py check FILE...      every pod template of every workload in the files
    podsecurity.py selftest FILE      each rule rejects a deliberately broken copy of the first
                                      Deployment in FILE, and the unbroken one passes

The rules are those of the profile (kubernetes.io/docs/concepts/security/pod-security-standards),
written out so that each can be tested on its own:

  baseline   no hostNetwork, hostPID, hostIPC; no privileged container; no hostPath volume; no
             hostPort; no Windows hostProcess; seccomp never Unconfined
  restricted runAsNonRoot true (pod, or every container) and never false; runAsUser never 0;
             allowPrivilegeEscalation false in every container; capabilities drop ALL and add
             nothing but NET_BIND_SERVICE; seccompProfile RuntimeDefault or Localhost (pod, or
             every container); volumes only of the allowed types
  project    readOnlyRootFilesystem true in every container; automountServiceAccountToken false

Every container counts: containers, initContainers and ephemeralContainers.
Prints what is wrong and exits 1, or exits 0.
"""
import copy
import sys

import yaml

# Kinds whose pod template lives at a known path.
POD_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}
SECCOMP_OK = {"RuntimeDefault", "Localhost"}


def pod_spec(obj):
    node = obj
    for key in POD_PATHS[obj["kind"]]:
        node = (node or {}).get(key)
    return node or {}


def containers(spec):
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field) or []:
            yield f"{field}[{c.get('name', '?')}]", c


def check_pod(spec):
    """Problems of one pod spec, each naming the rule and where it is broken."""
    problems = []
    pod_sc = spec.get("securityContext") or {}

    # baseline
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{field}: must not be true")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("hostProcess: must not be true")
    for v in spec.get("volumes") or []:
        kinds = [k for k in v if k != "name"]
        if "hostPath" in kinds:
            problems.append(f"hostPath: volume {v.get('name')} is a hostPath")
        elif any(k not in ALLOWED_VOLUMES for k in kinds):
            problems.append(f"volume types: volume {v.get('name')} is {kinds}, not one of {sorted(ALLOWED_VOLUMES)}")

    # restricted, pod level
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    if pod_sc.get("runAsNonRoot") is False:
        problems.append("runAsNonRoot: the pod sets it false")
    if pod_sc.get("runAsUser") == 0:
        problems.append("runAsUser: the pod runs as 0 (root)")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_OK:
        problems.append(f"seccompProfile: the pod's is {pod_seccomp}, not RuntimeDefault or Localhost")

    # project, pod level
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken: must be false (no service account token mounted)")

    for where, c in containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"privileged: {where} is privileged")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"hostProcess: {where} sets it")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                problems.append(f"hostPort: {where} port {p.get('containerPort')} binds host port {p['hostPort']}")
        if sc.get("runAsNonRoot") is False or (not pod_non_root and sc.get("runAsNonRoot") is not True):
            problems.append(f"runAsNonRoot: {where} may run as root (runAsNonRoot not true, on the pod or on it)")
        if sc.get("runAsUser") == 0:
            problems.append(f"runAsUser: {where} runs as 0 (root)")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"allowPrivilegeEscalation: {where} does not set it false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"capabilities: {where} does not drop ALL")
        extra = [cap for cap in caps.get("add") or [] if cap != "NET_BIND_SERVICE"]
        if extra:
            problems.append(f"capabilities: {where} adds {extra} (only NET_BIND_SERVICE is allowed)")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in SECCOMP_OK:
            problems.append(f"seccompProfile: {where}'s is {seccomp}, not RuntimeDefault or Localhost")
        elif seccomp is None and pod_seccomp is None:
            problems.append(f"seccompProfile: neither the pod nor {where} sets RuntimeDefault or Localhost")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"readOnlyRootFilesystem: {where} does not set it true")
    return problems


def load(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for obj in yaml.safe_load_all(f):
                if obj:
                    yield path, obj


def check(paths):
    problems, pods = [], 0
    for path, obj in load(paths):
        if obj.get("kind") not in POD_PATHS:
            continue
        pods += 1
        name = f"{path}: {obj['kind']}/{obj['metadata']['name']}"
        problems += [f"{name}: {p}" for p in check_pod(pod_spec(obj))]
    if pods == 0:
        problems.append("no workload found: nothing was checked")
    print(f"{pods} pod templates checked against the restricted profile")
    if problems:
        print("\n".join(problems))
    return 1 if problems else 0


# --- self-test: each rule must reject a copy broken for it -------------------------------------


def first_container(spec):
    return spec["containers"][0]


def sc_of(c):
    return c.setdefault("securityContext", {})


def unset(mapping, key):
    mapping.pop(key, None)


BREAKAGES = [
    # (what is broken, how, a word the problem must contain)
    ("hostNetwork", lambda s: s.update(hostNetwork=True), "hostNetwork"),
    ("hostPID", lambda s: s.update(hostPID=True), "hostPID"),
    ("hostIPC", lambda s: s.update(hostIPC=True), "hostIPC"),
    ("hostPath volume", lambda s: s.setdefault("volumes", []).append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
    ("nfs volume", lambda s: s.setdefault("volumes", []).append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
     "volume types"),
    ("privileged container", lambda s: sc_of(first_container(s)).update(privileged=True), "privileged"),
    ("hostPort", lambda s: first_container(s)["ports"][0].update(hostPort=9839), "hostPort"),
    ("Windows hostProcess", lambda s: sc_of(first_container(s)).update(windowsOptions={"hostProcess": True}),
     "hostProcess"),
    ("runAsNonRoot on neither pod nor container",
     lambda s: (unset(s["securityContext"], "runAsNonRoot"), unset(sc_of(first_container(s)), "runAsNonRoot")),
     "runAsNonRoot"),
    ("runAsNonRoot false on the container", lambda s: sc_of(first_container(s)).update(runAsNonRoot=False),
     "runAsNonRoot"),
    ("runAsNonRoot false on the pod", lambda s: s["securityContext"].update(runAsNonRoot=False), "runAsNonRoot"),
    ("runAsUser 0", lambda s: s["securityContext"].update(runAsUser=0), "runAsUser"),
    ("allowPrivilegeEscalation unset", lambda s: unset(sc_of(first_container(s)), "allowPrivilegeEscalation"),
     "allowPrivilegeEscalation"),
    ("allowPrivilegeEscalation true", lambda s: sc_of(first_container(s)).update(allowPrivilegeEscalation=True),
     "allowPrivilegeEscalation"),
    ("capabilities not dropped", lambda s: unset(sc_of(first_container(s)), "capabilities"), "drop ALL"),
    ("capability SYS_ADMIN added",
     lambda s: sc_of(first_container(s)).setdefault("capabilities", {}).update(add=["SYS_ADMIN"]), "SYS_ADMIN"),
    ("seccomp profile unset", lambda s: (unset(s["securityContext"], "seccompProfile"),
                                         unset(sc_of(first_container(s)), "seccompProfile")), "seccompProfile"),
    ("seccomp Unconfined on the container",
     lambda s: sc_of(first_container(s)).update(seccompProfile={"type": "Unconfined"}), "seccompProfile"),
    ("seccomp Unconfined on the pod", lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}),
     "seccompProfile"),
    ("readOnlyRootFilesystem unset", lambda s: unset(sc_of(first_container(s)), "readOnlyRootFilesystem"),
     "readOnlyRootFilesystem"),
    ("readOnlyRootFilesystem false", lambda s: sc_of(first_container(s)).update(readOnlyRootFilesystem=False),
     "readOnlyRootFilesystem"),
    ("service account token mounted", lambda s: s.update(automountServiceAccountToken=True),
     "automountServiceAccountToken"),
    ("service account token by default", lambda s: unset(s, "automountServiceAccountToken"),
     "automountServiceAccountToken"),
    ("an initContainer without a security context",
     lambda s: s.setdefault("initContainers", []).append({"name": "init", "image": "busybox"}),
     "initContainers[init]"),
    ("an ephemeral container that escalates",
     lambda s: s.setdefault("ephemeralContainers", []).append(
         {"name": "debug", "image": "busybox", "securityContext": {"allowPrivilegeEscalation": True}}),
     "ephemeralContainers[debug]"),
]

# What the profile allows and the checks must not refuse.
ALLOWED = [
    ("NET_BIND_SERVICE added", lambda s: sc_of(first_container(s)).setdefault("capabilities", {}).update(
        add=["NET_BIND_SERVICE"])),
    ("seccomp Localhost on the container instead of the pod",
     lambda s: (unset(s["securityContext"], "seccompProfile"),
                sc_of(first_container(s)).update(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"}))),
    ("runAsNonRoot on the container instead of the pod",
     lambda s: (unset(s["securityContext"], "runAsNonRoot"), sc_of(first_container(s)).update(runAsNonRoot=True))),
]


def uncaught(good, breakages, check):
    """Proves a check bites: each (what, breakage, word) of `breakages` is applied to a copy of
    `good`, and `check` must then report a problem naming `word`. Returns the breakages it let
    through."""
    problems = []
    for what, breakage, word in breakages:
        broken = copy.deepcopy(good)
        breakage(broken)
        found = check(broken)
        if not any(word in p for p in found):
            problems.append(f"{what}: not caught (expected a problem naming {word!r}, got {found})")
    return problems


def selftest(path):
    deployments = [obj for _, obj in load([path]) if obj.get("kind") == "Deployment"]
    if not deployments:
        print(f"{path}: no Deployment to break")
        return 1
    good = pod_spec(deployments[0])
    problems = [f"the unbroken pod fails: {p}" for p in check_pod(good)]
    problems += uncaught(good, BREAKAGES, check_pod)
    for what, change in ALLOWED:
        spec = copy.deepcopy(good)
        change(spec)
        found = check_pod(spec)
        if found:
            problems.append(f"{what}: allowed by the profile but refused: {found}")
    print(f"{len(BREAKAGES)} broken copies caught, {len(ALLOWED)} allowed variants passed"
          if not problems else f"{len(problems)} self-test failures")
    if problems:
        print("\n".join(problems))
    return 1 if problems else 0


def main(argv):
    if len(argv) < 3 or argv[1] not in ("check", "selftest"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return check(argv[2:]) if argv[1] == "check" else selftest(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
