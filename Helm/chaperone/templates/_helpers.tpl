{{/* The image every component (and every sidecar) runs. */}}
{{- define "chaperone.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Labels on every object. No Helm-specific labels: Manifests/ is rendered from this chart. */}}
{{- define "chaperone.labels" -}}
app.kubernetes.io/part-of: chaperone
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Selector labels of one component: include with (list . "collector"). */}}
{{- define "chaperone.selector" -}}
app.kubernetes.io/name: chaperone-{{ index . 1 }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "chaperone.componentLabels" -}}
{{ include "chaperone.labels" (index . 0) }}
{{ include "chaperone.selector" . }}
{{- end }}

{{/* The collector's in-cluster URL, as the sidecars reach it. */}}
{{- define "chaperone.collectorURL" -}}
https://chaperone-collector.{{ .Release.Namespace }}.svc:8080
{{- end }}

{{/* Restricted Pod Security: the container part. */}}
{{- define "chaperone.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end }}

{{/* Fail the render on combinations that cannot work. */}}
{{- define "chaperone.validate" -}}
{{- if and (eq .Values.collector.storage.backend "sqlite") (gt (int .Values.collector.replicas) 1) -}}
{{- fail "collector.replicas > 1 needs collector.storage.backend: postgres (SQLite has one writer)" -}}
{{- end -}}
{{- if and (eq .Values.collector.storage.backend "postgres") (not .Values.collector.storage.postgres.host) -}}
{{- fail "collector.storage.postgres.host is required with collector.storage.backend: postgres" -}}
{{- end -}}
{{- if and (eq .Values.collector.storage.backend "postgres") (not .Values.collector.log.signingKeySecret) -}}
{{- fail "collector.log.signingKeySecret is required with collector.storage.backend: postgres (replicas must sign with one key that outlives their pods)" -}}
{{- end -}}
{{- if and (eq .Values.certificates.mode "files") (not .Values.certificates.caBundle) -}}
{{- fail "certificates.caBundle (base64 of the PEM CA) is required with certificates.mode: files" -}}
{{- end -}}
{{- end }}
