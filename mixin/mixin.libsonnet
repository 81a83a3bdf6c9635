// The cloudconnexa_exporter monitoring mixin: `_config`, `prometheusAlerts` and
// `grafanaDashboards`, in the layout of the monitoring-mixins project.
//
//   local cloudconnexa = (import 'mixin.libsonnet') + {
//     _config+:: { cloudconnexaSelector: 'job="cloudconnexa-exporter"' },
//   };
//   cloudconnexa.prometheusAlerts     // { groups: [...] }, a Prometheus rule file
//   cloudconnexa.grafanaDashboards    // { 'cloudconnexa-sessions.json': {...}, ... }
//
// This folder is the source of the project's alert rules: alerts/cloudconnexa.rules.yml and
// the Kubernetes PrometheusRule are rendered from it by scripts/generate-ops.sh. The dashboards
// are the project's dashboards/*.json, copied into dashboards/ here by the same script so that
// the folder stands alone when vendored with jsonnet-bundler.
(import 'config.libsonnet')
+ (import 'alerts/alerts.libsonnet')
+ (import 'dashboards/dashboards.libsonnet')
