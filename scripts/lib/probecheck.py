#!/usr/bin/env python3
"""Runs the exporter as a rendered Deployment would, with TLS and basic auth turned on, and asks
what the kubelet's probes would ask (used by scripts/check-kubernetes.sh).

    probecheck.py BINARY FILE

FILE is a rendered overlay that runs in demo mode (overlays/demo). The exporter gets the
container's args and plain env values, its listen addresses moved to free loopback ports, and a
--web.config.file with a self-signed certificate (openssl) and a basic-auth user. Then:

  - the liveness and readiness probes, as the Deployment declares them (path, port, plain HTTP,
    no credentials), answer 200: /healthz at once, /readyz once the first listing is done;
  - the probe port answers nothing else (404 for /metrics);
  - the metrics port speaks only TLS and, over TLS, refuses /metrics without the password (401):
    the auth really is on, and the probes do not depend on it.

Prints what is wrong and exits 1, or exits 0. The exporter is stopped on every path.
"""
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import yaml

# A bcrypt hash (of a password this check never needs: it only checks refusals).
HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"
LISTEN = re.compile(r"^(--web\.(?:probe-)?listen-address)=(.*)$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, tls=None, timeout=3):
    """(status, None) or (None, error) for GET path on 127.0.0.1:port."""
    conn = (http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=timeout) if tls
            else http.client.HTTPConnection("127.0.0.1", port, timeout=timeout))
    try:
        conn.request("GET", path)
        return conn.getresponse().status, None
    except (OSError, http.client.HTTPException) as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        conn.close()


def until(deadline_s, probe, proc):
    """Calls probe() until it returns true, the process exits, or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = probe()
        if result or proc.poll() is not None or time.monotonic() >= deadline:
            return result
        time.sleep(0.1)


def main(binary, path):
    deployment = next(o for o in yaml.safe_load_all(open(path, encoding="utf-8")) if o and o["kind"] == "Deployment")
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in c.get("ports") or []}

    # Listen addresses to free loopback ports, remembering container port -> local port.
    local, args = {}, []
    for a in c.get("args") or []:
        m = LISTEN.match(a)
        if m:
            port = int(m.group(2).rsplit(":", 1)[1])
            local[port] = free_port()
            a = f"{m.group(1)}=127.0.0.1:{local[port]}"
        args.append(a)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({e["name"]: e["value"] for e in c.get("env") or [] if "value" in e})

    work = tempfile.mkdtemp(prefix="cloudconnexa-probes.")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    with open(f"{work}/web.yml", "w", encoding="utf-8") as f:
        f.write(f"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
                f"basic_auth_users:\n  prometheus: {HASH}\n")
    args.append(f"--web.config.file={work}/web.yml")
    tls = ssl.create_default_context(cafile=f"{work}/cert.pem")

    problems = []
    log = open(f"{work}/exporter.log", "w+", encoding="utf-8")
    proc = subprocess.Popen([binary, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            spec = (c.get(probe) or {}).get("httpGet") or {}
            port = local.get(named.get(spec.get("port"), spec.get("port")))
            if port is None or spec.get("path") != want:
                problems.append(f"{probe}: {spec} is not {want} on a port the exporter listens on")
                continue
            # The kubelet counts 200-399 as success; /readyz turns 200 after the first listing.
            status = until(60, lambda: (get(port, spec["path"])[0] or 0) in range(200, 400), proc)
            if not status:
                problems.append(f"{probe}: GET http://127.0.0.1:{port}{spec['path']} -> {get(port, spec['path'])}")
        probe_port = local.get(named.get("probes"))
        metrics_port = local.get(named.get("metrics"))
        status, err = get(probe_port, "/metrics") if probe_port else (None, "no probe port")
        if status != 404:
            problems.append(f"the probe port answers /metrics with {status or err}, expected 404")
        status, err = get(metrics_port, "/metrics")
        if status is not None:
            problems.append(f"the metrics port answers plain HTTP ({status}): TLS is not on")
        status, err = get(metrics_port, "/metrics", tls=tls)
        if status != 401:
            problems.append(f"the metrics port answers /metrics over TLS without a password with {status or err}, "
                            "expected 401")
        status, err = get(metrics_port, "/healthz", tls=tls)
        if status != 401:
            problems.append(f"the metrics port's /healthz over TLS without a password: {status or err}, expected 401 "
                            "(so the probes' own port is what keeps them working)")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.returncode not in (0, -signal.SIGTERM):
        problems.append(f"the exporter exited with {proc.returncode}")
    if problems:
        log.seek(0)
        problems.append("exporter log:\n" + "".join("    " + line for line in log.readlines()[-20:]))
    log.close()
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    os.rmdir(work)
    print(f"{binary} {' '.join(args)}")
    if problems:
        print("\n".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
