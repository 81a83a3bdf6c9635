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
  // Where a connector is: its network, or for a host connector (network "none") its host.
  local site = '{{ if eq $labels.network "none" }}host {{ $labels.host }}{{ else }}network {{ $labels.network }}{{ end }}',
  // CloudConnexaDataStale's threshold of each collector, in the order the exporter lists them.
  local staleMinutes = [
    ['sessions', c.dataStaleMinutes],
    ['connectors', c.connectorsDataStaleMinutes],
    ['users', c.usersDataStaleMinutes],
    ['regions', c.regionsDataStaleMinutes],
  ],

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
          // The sessions collector, the one the session metrics and most dashboards depend on,
          // has failed every run. The other collectors have CloudConnexaCollectorFailing: one
          // failing users collector must not look like (or page as) a sessions outage, and
          // cloudconnexa_up, which any failing collector turns to 0, would mix the two.
          alert: 'CloudConnexaPollFailing',
          expr: 'cloudconnexa_collector_up{collector="sessions"} == 0',
          'for': c.pollFailingFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'CloudConnexa exporter cannot poll the CloudConnexa API for sessions.',
            description: 'Every run of the sessions collector of {{ $labels.instance }} has failed for '
                         + humanize(c.pollFailingFor) + '; session metrics are frozen at the last successful '
                         + 'poll. See cloudconnexa_poll_errors_total{collector="sessions"} for the cause.',
          },
        },
        {
          // Any other collector (connectors, users, regions) has failed every run for a while:
          // its series keep the values of its last successful run. A warning, one per
          // collector: a refused endpoint (403: the API credentials lack that permission) or an
          // outage of one listing fails that collector alone.
          alert: 'CloudConnexaCollectorFailing',
          expr: 'cloudconnexa_collector_up{collector!="sessions"} == 0',
          'for': c.collectorFailingFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'A CloudConnexa exporter collector keeps failing.',
            description: 'Every run of the {{ $labels.collector }} collector of {{ $labels.instance }} has failed for '
                         + humanize(c.collectorFailingFor) + '; its metrics keep the values of its last successful '
                         + 'run. See cloudconnexa_poll_errors_total{collector="{{ $labels.collector }}"} for the cause.',
          },
        },
        {
          // The API refuses the exporter's credentials: token requests are refused (revoked,
          // expired, IP-restricted or mistyped API credentials), or the sessions endpoint is
          // refused (credentials without the permission to read sessions). No retry can fix
          // this: an operator has to, hence critical and a short `for`.
          //
          // Failed runs of kind "auth" come from 401/403 answers of any endpoint; a 403 on, say,
          // the users listing alone means a missing permission for that one collector
          // (CloudConnexaCollectorFailing), not rejected credentials, so the refusal must be
          // the token's or the sessions collector's. The 15-minute windows outlast the longest
          // wait between failed runs (10 minutes): a collector in its backoff still counts. One
          // alert per exporter, however many collectors the refusal stops; it clears once each
          // of them has run again.
          alert: 'CloudConnexaCredentialsRejected',
          expr: |||
            sum by (job, instance, kind) (
                increase(cloudconnexa_poll_errors_total{kind="auth"}[15m]) > 0
              and on (job, instance, collector)
                cloudconnexa_collector_up == 0
            )
            and on (job, instance)
            (
                sum by (job, instance) (increase(cloudconnexa_api_requests_total{endpoint="token", code=~"400|401|403"}[15m])) > 0
              or
                sum by (job, instance) (
                    increase(cloudconnexa_poll_errors_total{collector="sessions", kind="auth"}[15m]) > 0
                  and on (job, instance)
                    cloudconnexa_collector_up{collector="sessions"} == 0
                )
            )
          |||,
          'for': c.credentialsRejectedFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: "CloudConnexa rejects the exporter's API credentials.",
            description: 'Runs of {{ $labels.instance }} fail because CloudConnexa refuses its API credentials '
                         + '(the OAuth2 token, or the permission to read sessions); no session data is collected '
                         + 'until the credentials are fixed.',
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
          // Also catches a collector that hangs without failing (its cloudconnexa_collector_up
          // keeps its last value), which the failing-collector alerts do not see. One
          // threshold per collector, each several of its default intervals; a disabled
          // collector has no timestamp and a collector that never succeeded has none yet
          // (the failing-collector alerts cover it).
          alert: 'CloudConnexaDataStale',
          expr: std.join('\nor\n', [
            '(time() - cloudconnexa_last_successful_poll_timestamp_seconds{collector="%s"} > %d * 60)' % threshold
            for threshold in staleMinutes
          ]) + '\n',
          'for': c.dataStaleFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'CloudConnexa {{ $labels.collector }} metrics are stale.',
            description: 'The last successful run of the {{ $labels.collector }} collector of {{ $labels.instance }} '
                         + 'ended {{ $value | humanizeDuration }} ago; its CloudConnexa metrics no longer reflect '
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
          // the ratio to mean something. Counted from the duration histogram's counts, labelled
          // by region and status only: those series are dense and never expire, whereas the
          // failure counters' label sets are sparse (a label set's first failure is its first
          // sample, which increase() cannot see) and idle ones expire with the series TTL.
          alert: 'CloudConnexaSessionFailureRatioHigh',
          expr: |||
            (
                sum by (job, instance) (increase(cloudconnexa_session_duration_seconds_count{status="failed"}[15m]))
              /
                sum by (job, instance) (increase(cloudconnexa_session_duration_seconds_count[15m]))
            ) > %(sessionFailureRatioThreshold)s
            and on (job, instance)
            (
                sum by (job, instance) (increase(cloudconnexa_session_duration_seconds_count{status="failed"}[15m]))
              /
                sum by (job, instance) (increase(cloudconnexa_session_duration_seconds_count[15m]))
            )
            > 2 * (
                sum by (job, instance) (increase(cloudconnexa_session_duration_seconds_count{status="failed"}[1d]))
              /
                sum by (job, instance) (increase(cloudconnexa_session_duration_seconds_count[1d]))
            )
            and on (job, instance)
            sum by (job, instance) (increase(cloudconnexa_session_duration_seconds_count[15m])) >= %(sessionFailureMinEnded)d
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
          // while the sessions collector works (the other collectors do not matter here).
          alert: 'CloudConnexaRegionSessionsDropped',
          expr: |||
            (
              max_over_time(sum by (job, instance, vpn_region) (cloudconnexa_sessions_active)[1h:1m]) >= %(regionSessionsMin)d
              unless on (job, instance, vpn_region)
              sum by (job, instance, vpn_region) (cloudconnexa_sessions_active) > 0
            )
            and on (job, instance)
            cloudconnexa_collector_up{collector="sessions"} == 1
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
    {
      name: 'CloudConnexaConnectors',
      rules: [
        {
          // A network or host connector is OFFLINE: the site or VPC behind it is cut off from
          // the VPN. Its value is the age of the connectors collector's last successful run,
          // so the description says how old the state it rests on is: while that collector
          // fails, connector series keep their last values (Alertmanager's inhibitions quiet
          // these alerts once CloudConnexaCollectorFailing or CloudConnexaDataStale say so for
          // the connectors collector). No freshness guard in the expression: it would resolve
          // the alert while the site may still be down.
          alert: 'CloudConnexaConnectorOffline',
          expr: |||
            (cloudconnexa_connector_status{status="OFFLINE"} == 1)
            * on (job, instance) group_left ()
            (time() - cloudconnexa_last_successful_poll_timestamp_seconds{collector="connectors"})
          |||,
          'for': c.connectorOfflineFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'A CloudConnexa connector is offline.',
            description: 'Connector {{ $labels.connector }} (' + site + ', VPN region {{ $labels.vpn_region }}) has been OFFLINE for ' + humanize(c.connectorOfflineFor)
                         + ', as of the connectors collector\'s run {{ $value | humanizeDuration }} ago; what lies '
                         + 'behind it is unreachable through CloudConnexa.',
          },
        },
        {
          // A connector reports ONLINE_WITH_ISSUES: traffic may still flow, degraded. Same
          // value and caveat as CloudConnexaConnectorOffline.
          alert: 'CloudConnexaConnectorDegraded',
          expr: |||
            (cloudconnexa_connector_status{status="ONLINE_WITH_ISSUES"} == 1)
            * on (job, instance) group_left ()
            (time() - cloudconnexa_last_successful_poll_timestamp_seconds{collector="connectors"})
          |||,
          'for': c.connectorDegradedFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'A CloudConnexa connector has been online with issues for a while.',
            description: 'Connector {{ $labels.connector }} (' + site + ', VPN region {{ $labels.vpn_region }}) has been ONLINE_WITH_ISSUES for '
                         + humanize(c.connectorDegradedFor) + ', as of the connectors collector\'s run '
                         + '{{ $value | humanizeDuration }} ago.',
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
