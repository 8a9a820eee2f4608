{{- define "notebooks.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "notebooks.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "notebooks.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "notebooks.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "notebooks.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "notebooks.secretName" -}}
{{- default (include "notebooks.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- /* the service's URL prefix behind the Hub's proxy */ -}}
{{- define "notebooks.prefix" -}}
{{- printf "%s/services/%s/" (trimSuffix "/" .Values.jupyterhub_base_url) .Values.serviceName -}}
{{- end -}}

{{- /* a value kept across upgrades: given, else the one in the existing Secret, else new */ -}}
{{- define "notebooks.keptSecret" -}}
{{- $given := index . 0 -}}{{- $key := index . 1 -}}{{- $root := index . 2 -}}
{{- if $given -}}
{{- $given -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (include "notebooks.fullname" $root) -}}
{{- if and $existing (index $existing.data $key) -}}
{{- index $existing.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum 64 | sha256sum -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* pods of a component of the z2jh release beside this one (its app.kubernetes.io labels) */ -}}
{{- define "notebooks.jupyterhubPods" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/component: {{ index . 1 }}
app.kubernetes.io/instance: {{ $root.Values.networkPolicy.jupyterhubRelease }}
{{- end -}}
