// The Grafana dashboards of the mixin: the project's dashboards (dashboards/*.json at the
// repository's root, copied here by scripts/generate-ops.sh; edit those, not the copies), with
// the Job and Instance variables narrowed to the targets that `_config.cloudconnexaSelector`
// matches. With the default `_config` they are the project's files exactly, which the test
// command checks.
//
// A new dashboard: add its file to the repository's dashboards/, run scripts/generate-ops.sh
// and list it below.
local files = {
  'cloudconnexa-exporter.json': import 'cloudconnexa-exporter.json',
  'cloudconnexa-sessions.json': import 'cloudconnexa-sessions.json',
};

{
  local selector = $._config.cloudconnexaSelector,
  // The variables' queries, by variable name; every other variable is filtered by $job and
  // $instance and so follows these two.
  local queries = {
    job: 'label_values(cloudconnexa_up{%s}, job)' % selector,
    instance: 'label_values(cloudconnexa_up{%s, job=~"$job"}, instance)' % selector,
  },
  local withSelector(variable) =
    if std.objectHas(queries, variable.name) then
      variable {
        definition: queries[variable.name],
        query+: { query: queries[variable.name] },
      }
    else variable,

  grafanaDashboards+:: {
    [name]: files[name] {
      templating+: { list: [withSelector(v) for v in super.list] },
    }
    for name in std.objectFields(files)
  },
}
