{{/* Name of the chart, overridable. */}}
{{- define "carbonshift.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already holds it. */}}
{{- define "carbonshift.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "carbonshift.schedulerFullname" -}}
{{- printf "%s-scheduler" (include "carbonshift.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object, except the selector ones. */}}
{{- define "carbonshift.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: carbonshift
{{- end }}

{{- define "carbonshift.labels" -}}
{{ include "carbonshift.commonLabels" . }}
app.kubernetes.io/name: {{ include "carbonshift.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "carbonshift.selectorLabels" -}}
app.kubernetes.io/name: {{ include "carbonshift.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: extender
{{- end }}

{{- define "carbonshift.schedulerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "carbonshift.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: scheduler
{{- end }}

{{- define "carbonshift.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "carbonshift.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "carbonshift.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* kube-scheduler image: the cluster's own version unless pinned. */}}
{{- define "carbonshift.schedulerImage" -}}
{{- $tag := .Values.scheduler.image.tag }}
{{- if not $tag }}
{{- $tag = regexFind "^v[0-9]+\\.[0-9]+\\.[0-9]+" .Capabilities.KubeVersion.Version }}
{{- end }}
{{- printf "%s:%s" .Values.scheduler.image.repository $tag }}
{{- end }}

{{/* Secret holding the server certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "carbonshift.serverSecret" -}}
{{- if eq .Values.tls.source "existing" }}
{{- required "tls.existing.serverSecret is required when tls.source is existing" .Values.tls.existing.serverSecret }}
{{- else }}
{{- printf "%s-server-tls" (include "carbonshift.fullname" .) }}
{{- end }}
{{- end }}

{{/* Secret holding the client certificate for kube-scheduler and probes. */}}
{{- define "carbonshift.clientSecret" -}}
{{- if eq .Values.tls.source "existing" }}
{{- required "tls.existing.clientSecret is required when tls.source is existing" .Values.tls.existing.clientSecret }}
{{- else }}
{{- printf "%s-client-tls" (include "carbonshift.fullname" .) }}
{{- end }}
{{- end }}

{{- define "carbonshift.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{/* In-cluster URL of the extender Service; /healthz, /readyz and /metrics
answer right under it whatever config.pathPrefix is. */}}
{{- define "carbonshift.url" -}}
{{- printf "%s://%s.%s.svc:%v" (include "carbonshift.scheme" .) (include "carbonshift.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}

{{/* The extender's urlPrefix: the Service URL plus config.pathPrefix, under
which carbonshift answers /filter and /prioritize. */}}
{{- define "carbonshift.extenderURL" -}}
{{- printf "%s%s" (include "carbonshift.url" .) (.Values.config.pathPrefix | default "") }}
{{- end }}

{{/* Combinations the schema cannot refuse, refused with the reason. */}}
{{- define "carbonshift.validate" -}}
{{- if and .Values.credentials.env (not .Values.credentials.existingSecret) }}
{{- fail "credentials.env maps variables to keys of credentials.existingSecret, which is not set: the providers would run without their credentials" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not (kindIs "string" .Values.podDisruptionBudget.minAvailable)) (ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) }}
{{- fail "podDisruptionBudget.minAvailable must be below replicaCount: otherwise no extender pod can be evicted and node drains block" }}
{{- end }}
{{- if and .Values.scheduler.enabled (not .Values.scheduler.leaderElection.enabled) (gt (int .Values.scheduler.replicaCount) 1) }}
{{- fail "scheduler.replicaCount above 1 needs scheduler.leaderElection.enabled: several active schedulers would race to bind the same pods" }}
{{- end }}
{{- $probePort := include "carbonshift.probePort" . | atoi }}
{{- if eq $probePort (int .Values.service.port) }}
{{- fail (printf "probes.port (%d) must differ from service.port: the probe listener is a second socket (0 probes the extender port)" $probePort) }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (not .Values.scheduler.enabled) (not .Values.networkPolicy.from) }}
{{- fail "networkPolicy.enabled with the cluster's own scheduler needs networkPolicy.from (its control-plane nodes as ipBlock): otherwise nothing may call the extender" }}
{{- end }}
{{- /* carbonshift's shutdownGracePeriod in seconds: 20 by default, else
     CARBONSHIFT_SHUTDOWN_GRACE_PERIOD in extraEnv (which overrides the
     file), else config's; a form other than whole units is not checked. */}}
{{- $grace := "20s" }}
{{- with .Values.config.shutdownGracePeriod }}{{ $grace = toString . }}{{ end }}
{{- range .Values.extraEnv }}
{{- if and (eq .name "CARBONSHIFT_SHUTDOWN_GRACE_PERIOD") .value }}{{ $grace = toString .value }}{{ end }}
{{- end }}
{{- $shutdown := include "carbonshift.durationSeconds" $grace | atoi }}
{{- /* After shutdownGracePeriod carbonshift gives the replies of requests
     cut at the deadline 1 s to go out, and its calls to the API server
     about 1 s to end (docs/operations.md, Graceful shutdown): 2 s more,
     and "exceed" leaves a second for a decision still running. */}}
{{- $tail := 2 }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add (int .Values.preStopSleepSeconds) $shutdown $tail) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d) plus carbonshift's shutdownGracePeriod (%ds) plus the %ds it may take after that to send the last replies and exit: the kubelet would kill requests in flight" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) $shutdown $tail) }}
{{- end }}
{{- end }}

{{/* The probe listener's port: probes.port, 8081 when the values lack it
     (a release upgraded with --reuse-values from a chart before it), 0 for
     none. */}}
{{- define "carbonshift.probePort" -}}
{{- if hasKey .Values.probes "port" }}{{ int .Values.probes.port }}{{ else }}8081{{ end }}
{{- end }}

{{/* A duration of whole units ("20s", "1m30s", "2h") in seconds, or 0
     when it has another form. */}}
{{- define "carbonshift.durationSeconds" -}}
{{- $total := 0 }}
{{- if regexMatch "^([0-9]+[smhd])+$" . }}
{{- range regexFindAll "[0-9]+[smhd]" . -1 }}
{{- $n := atoi (regexFind "^[0-9]+" .) }}
{{- $unit := trimPrefix (regexFind "^[0-9]+" .) . }}
{{- $total = add $total (mul $n (get (dict "s" 1 "m" 60 "h" 3600 "d" 86400) $unit)) }}
{{- end }}
{{- end }}
{{- $total -}}
{{- end }}
