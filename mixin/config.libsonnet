// Settings of the cloudconnexa_exporter mixin: the selector that finds the exporter's scrape
// targets, the alert thresholds and `for` durations, and where runbooks live. Override any of
// them with `(import 'mixin.libsonnet') + { _config+:: { ... } }`.
{
  _config+:: {
    // Label matchers that select the exporter's scrape targets. The rules built on `up`, which
    // every target has, need it to find the exporter's own; the dashboards' Job and Instance
    // variables list only targets it matches. The default matches any job whose name contains
    // "cloudconnexa" (cloudconnexa, cloudconnexa-exporter-acme, monitoring/cloudconnexa, ...).
    cloudconnexaSelector: 'job=~".*cloudconnexa.*"',
    // How alert descriptions name those targets; derived from the selector unless set.
    cloudconnexaTargetsDescription:
      if self.cloudconnexaSelector == 'job=~".*cloudconnexa.*"'
      then 'whose job matches "cloudconnexa"'
      else 'matching {%s}' % self.cloudconnexaSelector,

    // runbook_url of every alert: this pattern with the alert's name in lower case. The
    // runbooks are sections of the project's README; point it at your copy, e.g.
    // 'https://git.example.com/cloudconnexa_exporter/blob/main/README.md#%s'.
    runbookURLPattern: 'README.md#%s',

    // How long each condition must hold before its alert fires (Prometheus durations).
    exporterDownFor: '5m',
    exporterAbsentFor: '15m',
    pollFailingFor: '15m',
    credentialsRejectedFor: '5m',
    rateLimitedFor: '30m',
    dataStaleFor: '5m',
    sessionFailureRatioHighFor: '10m',
    regionSessionsDroppedFor: '10m',

    // CloudConnexaDataStale: minutes since the last successful poll. Keep it well above
    // --poll.interval (60s by default).
    dataStaleMinutes: 15,
    // CloudConnexaSessionFailureRatioHigh: the share of ended sessions that failed in 15
    // minutes (a PromQL number, as text so that it is written exactly as given), and how many
    // sessions must have ended for the ratio to count.
    sessionFailureRatioThreshold: '0.10',
    sessionFailureMinEnded: 20,
    // CloudConnexaRegionSessionsDropped: active sessions a VPN region must have had in the last
    // hour before its emptying is worth an alert.
    regionSessionsMin: 10,
  },
}
