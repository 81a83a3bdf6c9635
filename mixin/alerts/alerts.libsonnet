// The alerting rules of cloudconnexa_exporter: the one place to edit them.
//
// scripts/generate-ops.sh renders them, with the default `_config`, into
// alerts/cloudconnexa.rules.yml (which Prometheus, the promtool unit tests in alerts/tests, the
// demo stack and the end-to-end test load) and into the Kubernetes PrometheusRule; the test
// command fails while those files differ from what this file gives.
//
// Names follow the monitoring-mixin habit: one prefix (CloudConnexa), a `severity` label
// (critical pages someone, warning goes to a ticket or chat), and `summary`, `description` and
// `runbook_url` annotations. Each runbook is a section of the project's README, whose heading is
// the alert's name. Thresholds and `for` durations come from `_config` (config.libsonnet);
// descriptions that mention a duration say the configured one.

// '5m' -> '5 minutes', '1h' -> '1 hour'; anything else as it is.
local humanize(duration) =
  local units = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' };
  local n = std.substr(duration, 0, std.length(duration) - 1);
  local unit = duration[std.length(duration) - 1];
  local digitsOnly = std.length(n) > 0
                     && std.length([c for c in std.stringChars(n) if std.length(std.findSubstr(c, '0123456789')) == 0]) == 0;
  if std.objectHas(units, unit) && digitsOnly
  then n + ' ' + units[unit] + (if n == '1' then '' else 's')
  else duration;

{
  local c = $._config,
  local runbook(alert) = c.runbookURLPattern % std.asciiLower(alert),

  // Every rule's runbook_url is added below, from its name.
  local groups = [
    {
      name: 'CloudConnexaExporter',
      rules: [
        {
          // The scrape itself fails: the process is gone, hung, or unreachable.
          alert: 'CloudConnexaExporterDown',
          expr: 'up{%(cloudconnexaSelector)s} == 0' % c,
          'for': c.exporterDownFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'CloudConnexa exporter is down.',
            description: 'Prometheus has failed to scrape the CloudConnexa exporter {{ $labels.instance }} '
                         + '(job {{ $labels.job }}) for ' + humanize(c.exporterDownFor)
                         + ', so no CloudConnexa session metrics are collected.',
          },
        },
        {
          // No target at all: the exporter was removed from service discovery or the job renamed.
          alert: 'CloudConnexaExporterAbsent',
          expr: 'absent(up{%(cloudconnexaSelector)s})' % c,
          'for': c.exporterAbsentFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'CloudConnexa exporter has disappeared from Prometheus target discovery.',
            description: 'No scrape target ' + c.cloudconnexaTargetsDescription + ' has existed for '
                         + humanize(c.exporterAbsentFor) + ', so CloudConnexa is not monitored at all.',
          },
        },
        {
          // The exporter is scraped fine, but its background poll of the CloudConnexa API fails.
          alert: 'CloudConnexaPollFailing',
          expr: 'cloudconnexa_up == 0',
          'for': c.pollFailingFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'CloudConnexa exporter cannot poll the CloudConnexa API.',
            description: 'Every poll cycle of {{ $labels.instance }} has failed for ' + humanize(c.pollFailingFor)
                         + '; session metrics are frozen at the last successful poll. See '
                         + 'cloudconnexa_poll_errors_total for the cause.',
          },
        },
        {
          // Token requests are refused (revoked, expired, IP-restricted or mistyped API
          // credentials). No retry can fix this: an operator has to, hence critical and a
          // short `for`.
          alert: 'CloudConnexaCredentialsRejected',
          expr: |||
            increase(cloudconnexa_poll_errors_total{kind="auth"}[5m]) > 0
            and on (job, instance)
            cloudconnexa_up == 0
          |||,
          'for': c.credentialsRejectedFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: "CloudConnexa rejects the exporter's API credentials.",
            description: 'Poll cycles of {{ $labels.instance }} fail because CloudConnexa refuses its OAuth2 '
                         + 'client credentials; no session data is collected until the credentials are fixed.',
          },
        },
        {
          // A lone exporter paces itself and should never see a 429 in steady state. 429s in
          // every 10-minute window for 30 minutes mean the budget is shared or too small.
          alert: 'CloudConnexaRateLimited',
          expr: |||
            sum by (job, instance) (increase(cloudconnexa_api_requests_total{code="429"}[10m])) > 0
          |||,
          'for': c.rateLimitedFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'CloudConnexa API keeps rate-limiting the exporter.',
            description: '{{ $labels.instance }} received {{ $value | printf "%.0f" }} HTTP 429 answers in the '
                         + 'last 10 minutes and has kept receiving them for ' + humanize(c.rateLimitedFor)
                         + '; polls are delayed and data gets older.',
          },
        },
        {
          // Also catches a poller that hangs without failing (cloudconnexa_up keeps its last
          // value). The default 15 minutes is 15 of the default 60s poll intervals; raise
          // dataStaleMinutes for longer intervals.
          alert: 'CloudConnexaDataStale',
          expr: 'time() - cloudconnexa_last_successful_poll_timestamp_seconds > %(dataStaleMinutes)d * 60' % c,
          'for': c.dataStaleFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'CloudConnexa session metrics are stale.',
            description: 'The last successful poll of {{ $labels.instance }} ended '
                         + '{{ $value | humanizeDuration }} ago; CloudConnexa session metrics no longer reflect '
                         + 'the tenant.',
          },
        },
      ],
    },
    {
      name: 'CloudConnexaSessions',
      rules: [
        {
          // A jump: over 10% (by default) of the sessions that ended in the last 15 minutes
          // failed, at least twice the share of the last day, and enough sessions ended for
          // the ratio to mean something.
          alert: 'CloudConnexaSessionFailureRatioHigh',
          expr: |||
            (
                sum by (job, instance) (increase(cloudconnexa_sessions_failed_total[15m]))
              /
                sum by (job, instance) (increase(cloudconnexa_sessions_ended_total[15m]))
            ) > %(sessionFailureRatioThreshold)s
            and on (job, instance)
            (
                sum by (job, instance) (increase(cloudconnexa_sessions_failed_total[15m]))
              /
                sum by (job, instance) (increase(cloudconnexa_sessions_ended_total[15m]))
            )
            > 2 * (
                sum by (job, instance) (increase(cloudconnexa_sessions_failed_total[1d]))
              /
                sum by (job, instance) (increase(cloudconnexa_sessions_ended_total[1d]))
            )
            and on (job, instance)
            sum by (job, instance) (increase(cloudconnexa_sessions_ended_total[15m])) >= %(sessionFailureMinEnded)d
          ||| % c,
          'for': c.sessionFailureRatioHighFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'Share of failed CloudConnexa VPN sessions has jumped.',
            description: '{{ $value | humanizePercentage }} of the VPN sessions that ended in the last 15 minutes '
                         + 'on {{ $labels.instance }} failed, more than twice the share of the last day.',
          },
        },
        {
          // Active sessions of a VPN region vanish (their series disappear, they do not go to
          // 0) after the region had at least regionSessionsMin at some point in the last hour,
          // while polling works.
          alert: 'CloudConnexaRegionSessionsDropped',
          expr: |||
            (
              max_over_time(sum by (job, instance, vpn_region) (cloudconnexa_sessions_active)[1h:1m]) >= %(regionSessionsMin)d
              unless on (job, instance, vpn_region)
              sum by (job, instance, vpn_region) (cloudconnexa_sessions_active) > 0
            )
            and on (job, instance)
            cloudconnexa_up == 1
          ||| % c,
          'for': c.regionSessionsDroppedFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'No active CloudConnexa sessions left in a VPN region.',
            description: 'VPN region {{ $labels.vpn_region }} had up to {{ $value | printf "%.0f" }} active '
                         + 'sessions in the last hour and has had none for '
                         + humanize(c.regionSessionsDroppedFor) + '.',
          },
        },
      ],
    },
  ],

  prometheusAlerts+:: {
    groups+: [
      group { rules: [rule { annotations+: { runbook_url: runbook(rule.alert) } } for rule in group.rules] }
      for group in groups
    ],
  },
}
