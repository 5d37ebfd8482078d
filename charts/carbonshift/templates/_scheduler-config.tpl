{{/*
The bundled scheduler's KubeSchedulerConfiguration (config.yaml of its
ConfigMap). kube-scheduler reads it once at start, so its Deployment carries
the checksum of this rendering: any value that changes it (TLS, client
authentication, Service port, pathPrefix, the full name) rolls the scheduler.
*/}}
{{/* Where the bundled scheduler mounts the client certificate Secret. */}}
{{- define "carbonshift.schedulerCertDir" -}}
/etc/carbonshift/client-tls
{{- end }}

{{- define "carbonshift.schedulerConfig" -}}
{{- $name := include "carbonshift.schedulerFullname" . }}
{{- $certDir := include "carbonshift.schedulerCertDir" . }}
{{- $s := .Values.scheduler -}}
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: {{ $s.leaderElection.enabled }}
  resourceLock: leases
  resourceNamespace: {{ .Release.Namespace }}
  resourceName: {{ $name }}
percentageOfNodesToScore: {{ $s.percentageOfNodesToScore }}
profiles:
  - schedulerName: {{ $s.schedulerName }}
    {{- with $s.profile }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
extenders:
  - urlPrefix: {{ include "carbonshift.extenderURL" . | quote }}
    filterVerb: filter
    prioritizeVerb: prioritize
    {{- /* Preemption asks carbonshift too, so that no pod is evicted for
    one it keeps waiting or over budget (docs/time-shifting.md). */}}
    preemptVerb: preempt
    weight: {{ $s.weight }}
    httpTimeout: {{ $s.httpTimeout }}
    nodeCacheCapable: {{ $s.nodeCacheCapable }}
    ignorable: {{ $s.ignorable }}
    {{- if .Values.tls.enabled }}
    enableHTTPS: true
    tlsConfig:
      caFile: {{ $certDir }}/ca.crt
      {{- if .Values.tls.clientAuth }}
      certFile: {{ $certDir }}/tls.crt
      keyFile: {{ $certDir }}/tls.key
      {{- end }}
    {{- end }}
    {{- with $s.managedResources }}
    managedResources:
      {{- range . }}
      - name: {{ . }}
        ignoredByScheduler: false
      {{- end }}
    {{- end }}
{{- end }}
