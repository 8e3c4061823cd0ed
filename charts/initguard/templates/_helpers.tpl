{{- define "initguard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "initguard.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "initguard.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "initguard.tlsSecret" -}}
{{- if eq .Values.tls.mode "existing-secret" -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "initguard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Every name the Service answers to. */}}
{{- define "initguard.dnsNames" -}}
{{- $svc := include "initguard.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/* The self-signed CA and serving certificate, generated once: an upgrade reads them back
     from the Secret so the caBundle of the webhooks stays valid. */}}
{{- define "initguard.selfSigned" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "initguard.tlsSecret" .) -}}
{{- if and $secret (index $secret.data "ca.crt") -}}
{{- dict "ca" (index $secret.data "ca.crt") "cert" (index $secret.data "tls.crt") "key" (index $secret.data "tls.key") | toJson -}}
{{- else -}}
{{- $ca := genCA "initguard CA" (int .Values.tls.validityDays) -}}
{{- $svc := include "initguard.fullname" . -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc .Release.Namespace) nil (include "initguard.dnsNames" . | fromJsonArray) (int .Values.tls.validityDays) $ca -}}
{{- dict "ca" ($ca.Cert | b64enc) "cert" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) | toJson -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the webhooks never see: the configured ones and the release's own. */}}
{{- define "initguard.namespaceExclusion" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values:
  {{- range (append .Values.webhooks.excludeNamespaces .Release.Namespace | uniq) }}
  - {{ . | quote }}
  {{- end }}
{{- end -}}

{{/* clientConfig of a webhook: the Service, a path and, unless cert-manager injects it, the caBundle. */}}
{{- define "initguard.clientConfig" -}}
service:
  name: {{ .fullname }}
  namespace: {{ .namespace }}
  path: {{ .path }}
  port: 443
{{- if .caBundle }}
caBundle: {{ .caBundle }}
{{- end }}
{{- end -}}

{{/*
The server's deadline for one review, derived from the webhooks' timeoutSeconds: the shorter
of the two less half a second, so that the server answers (504 at worst) before the apiserver
gives up on it.
*/}}
{{- define "initguard.requestTimeout" -}}
{{- $timeout := min .Values.webhooks.mutating.timeoutSeconds .Values.webhooks.validating.timeoutSeconds -}}
{{- sub (mul $timeout 1000) 500 }}ms
{{- end }}
