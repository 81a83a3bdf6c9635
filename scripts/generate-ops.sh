#!/usr/bin/env bash
# Regenerates every generated operations file from its source (the list is in
# scripts/lib/opsgen.py):
#   - alerts/cloudconnexa.rules.yml and the Kubernetes PrometheusRule, from the mixin's alerts
#     (mixin/alerts/alerts.libsonnet, mixin/config.libsonnet);
#   - the dashboards' copies in mixin/dashboards/ and deploy/kubernetes/monitoring/, and that
#     folder's kustomization.yaml, from dashboards/*.json.
#
#   scripts/generate-ops.sh            # then commit what it changed
#   scripts/generate-ops.sh --force    # also overwrite generated files edited by hand
#
# scripts/check-kubernetes.sh (run by scripts/test) fails while a committed file differs from
# what this gives. Installs jsonnet (Debian package) and PyYAML when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/tools.sh
. scripts/lib/tools.sh

need_cmd jsonnet jsonnet
need_pymodule yaml PyYAML
python3 scripts/lib/opsgen.py write "$@"
