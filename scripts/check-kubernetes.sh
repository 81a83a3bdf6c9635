#!/usr/bin/env bash
# Checks of the Kubernetes packaging (deploy/kubernetes), the monitoring mixin (mixin/) and the
# container image, with the real tools and no cluster or Docker engine:
#
#   scripts/check-kubernetes.sh [PATH/TO/cloudconnexa_exporter]   # default target/release/...
#
#   - generated files (alerts/, the PrometheusRule, dashboard copies) are what
#     scripts/generate-ops.sh makes; the mixin renders, its alerts are alerts/ and its dashboards
#     dashboards/; a _config of one's own reaches every rule and dashboard that selects by job;
#   - every kustomization renders (`kubectl kustomize`); every object validates against
#     Kubernetes' own schemas (kubernetes-validate, strict) or the Prometheus Operator's CRD
#     schemas (strict: unknown fields are errors); the PrometheusRule holds exactly alerts/ and
#     passes `promtool check rules`;
#   - the pods meet the restricted Pod Security Standard; the exporter runs one replica with
#     Recreate, probes on their own port, no secret in any manifest; its Service, NetworkPolicy
#     and ServiceMonitor fit it; two tenants side by side share nothing; the image name can be
#     changed as `kustomize edit set image` does;
#   - the release binary needs no shared library beyond the runtime image's, the image's user and
#     port are the Deployment's, the manifests' flags and variables are the binary's, and the
#     demo pod's command line, run with TLS and basic auth on, answers its probes.
# The pod security, schema, exporter and image checks are first shown to refuse deliberately
# broken copies, so that a pass means something.
#
# Installs what it needs when missing: kubectl (Debian's kubernetes-client, only if no kubectl is
# on PATH; the kustomizations need kustomize v5, i.e. kubectl 1.27 or later), jsonnet, promtool
# (prometheus), readelf (binutils), openssl, and from PyPI PyYAML, jsonschema and
# kubernetes-validate. The binary is not built here: scripts/test builds it before this step
# (`cargo build --locked --release`). Closes with `check-kubernetes: N passed, M failed` and
# exits non-zero if anything failed.
set -uo pipefail

bin=${1:-target/release/cloudconnexa_exporter}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/lib/tools.sh
. scripts/lib/tools.sh

# Major version of the kustomize built into kubectl (empty when kubectl does not say: old ones
# such as Debian 12's 1.20 do not).
kustomize_major() {
    kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p'
}

command -v kubectl >/dev/null 2>&1 || need_cmd kubectl kubernetes-client || exit 1
if [ "$(kustomize_major)" -lt 5 ] 2>/dev/null || [ -z "$(kustomize_major)" ]; then
    echo "kubectl at $(command -v kubectl) embeds kustomize '$(kustomize_major)'; deploy/kubernetes needs" \
        "kustomize v5 (kubectl 1.27 or later). Debian 12's kubernetes-client (1.20) is too old." >&2
    exit 1
fi
need_cmd jsonnet jsonnet || exit 1
need_cmd promtool prometheus || exit 1
need_cmd readelf binutils || exit 1
need_cmd openssl openssl || exit 1
need_pymodule yaml PyYAML || exit 1
need_pymodule jsonschema jsonschema || exit 1
need_pymodule kubernetes_validate kubernetes-validate || exit 1
kubectl version --client | sed 's/^/     /'

work=$(mktemp -d "${TMPDIR:-/tmp}/cloudconnexa-k8s.XXXXXX")
trap 'rm -rf "$work"' EXIT
gen=scripts/lib/opsgen.py
k8s=scripts/lib/k8scheck.py
pss=scripts/lib/podsecurity.py

# --- generated files and the mixin -------------------------------------------------------------
check "generated files are what scripts/generate-ops.sh makes" python3 $gen check
check "the mixin renders; its alerts are alerts/, its dashboards dashboards/" python3 $gen mixin
check "a _config of one's own reaches every job selector, threshold and dashboard variable" \
    python3 $gen mixin-config
check "README's mixin example renders with the mixin vendored alone" python3 $gen readme-example

# --- rendering ---------------------------------------------------------------------------------
# render DIR: `kubectl kustomize` of DIR into $work/<DIR with / as _>.yaml.
rendered() { printf '%s/%s.yaml' "$work" "$(printf '%s' "$1" | tr / _)"; }
render() { kubectl kustomize "$1" >"$(rendered "$1")"; }

mapfile -t kustomizations < <(find deploy/kubernetes -name kustomization.yaml -printf '%h\n' | sort)
renders=()
for dir in "${kustomizations[@]}"; do
    check "kubectl kustomize $dir" render "$dir"
    renders+=("$(rendered "$dir")")
done
demo=$(rendered deploy/kubernetes/overlays/demo)
tenants=$(rendered deploy/kubernetes/overlays/tenants)
acme=$(rendered deploy/kubernetes/overlays/tenants/acme)
monitoring=$(rendered deploy/kubernetes/monitoring)

# --- schemas -----------------------------------------------------------------------------------
note "every object validates: Kubernetes' schemas and the Prometheus Operator's CRDs, strict" \
    python3 $k8s schemas "${renders[@]}"
check "schema validation refuses broken objects (unknown fields, wrong types, unknown kinds)" \
    python3 $k8s schemas-selftest "$demo"
check "the vendored CRDs are those of ../shared/reference (where present)" \
    python3 $k8s crds-in-step ../shared/reference/prometheus-operator-crds

# --- the rules ---------------------------------------------------------------------------------
for dir in deploy/kubernetes/monitoring deploy/kubernetes/overlays/demo deploy/kubernetes/overlays/tenants; do
    groups="$work/$(basename "$dir").rules.yml"
    check "$dir: the PrometheusRule holds exactly alerts/cloudconnexa.rules.yml" \
        python3 $k8s rules "$(rendered "$dir")" alerts/cloudconnexa.rules.yml "$groups"
    check "$dir: promtool check rules on the PrometheusRule's groups" promtool check rules "$groups"
done

# --- pods, the exporter and its companions -----------------------------------------------------
check "the pods meet the restricted Pod Security Standard (+ read-only root, no token)" \
    python3 $pss check "$demo" "$tenants" "$acme"
check "the Pod Security checks refuse each deliberately broken pod" python3 $pss selftest "$tenants"
check "the exporter: one replica, Recreate, probes on their own port, no inline secret, resources; its Service, NetworkPolicy, ServiceMonitor" \
    python3 $k8s exporter "$demo" "$tenants" "$acme"
check "the exporter checks refuse each deliberately broken copy" python3 $k8s exporter-selftest "$acme"
check "dashboard ConfigMaps are dashboards/*.json, labelled grafana_dashboard: \"1\"" \
    python3 $k8s dashboards "$monitoring" dashboards

# Two tenants side by side, added the way the README says.
two_tenants() {
    cp -r deploy/kubernetes "$work/two" &&
        python3 $k8s add-tenant "$work/two" globex &&
        kubectl kustomize "$work/two/overlays/tenants" >"$work/two.yaml" &&
        python3 $k8s tenants "$work/two.yaml" 2
}
check "two tenants side by side (acme + a copy named globex) share no name, Secret or target" two_tenants

# What `kustomize edit set image` writes, applied to a copy of each overlay.
set_image() {
    local overlay=$1 copy="$work/img/$1"
    rm -rf "$work/img" && mkdir -p "$work/img" && cp -r deploy "$work/img/" &&
        python3 $k8s set-image "$copy" registry.example.org/team/cloudconnexa_exporter:9.9.9 &&
        kubectl kustomize "$copy" >"$work/img.yaml" &&
        python3 $k8s image-is "$work/img.yaml" registry.example.org/team/cloudconnexa_exporter:9.9.9
}
for overlay in deploy/kubernetes/overlays/demo deploy/kubernetes/overlays/tenants/acme; do
    check "$overlay: kustomize edit set image changes the exporter's image" set_image "$overlay"
done

# --- the binary and the image ------------------------------------------------------------------
if [ -x "$bin" ]; then
    note "the binary's libraries are the runtime image's; USER and EXPOSE are the Deployment's" \
        python3 $k8s image "$bin" Dockerfile "$demo" "$tenants"
    check "that check refuses a binary needing OpenSSL and a Dockerfile with another user, port or base" \
        python3 $k8s image-selftest "$bin" Dockerfile "$demo"
    note "the manifests' flags and CLOUDCONNEXA_ variables are ones the binary knows" \
        python3 $k8s flags "$bin" "$demo" "$tenants"
    check "the demo pod's probes answer on their own port with TLS and basic auth on" \
        python3 scripts/lib/probecheck.py "$bin" "$demo"
else
    check "release binary $bin exists (build it: cargo build --locked --release)" test -x "$bin"
fi

check "shell scripts parse" bash -n scripts/check-kubernetes.sh scripts/generate-ops.sh
summary check-kubernetes
