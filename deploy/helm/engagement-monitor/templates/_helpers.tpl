{{/*
Names. A StatefulSet's name is at most 52 characters: its pods get the
controller-revision-hash label, whose value (name + "-" + 10 characters)
must fit in 63.
*/}}
{{- define "engagement-monitor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "engagement-monitor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "engagement-monitor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: they never change on an installed release. */}}
{{- define "engagement-monitor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "engagement-monitor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "engagement-monitor.labels" -}}
helm.sh/chart: {{ include "engagement-monitor.chart" . }}
{{ include "engagement-monitor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "engagement-monitor.shard" -}}
{{- if eq .Values.mode "shard" }}true{{ end }}
{{- end }}

{{/* replicas: 1 in replica mode and 3 in shard mode unless set. */}}
{{- define "engagement-monitor.replicas" -}}
{{- if kindIs "invalid" .Values.replicas }}
{{- if include "engagement-monitor.shard" . }}3{{ else }}1{{ end }}
{{- else }}
{{- .Values.replicas }}
{{- end }}
{{- end }}

{{/* The Kafka group: one for all shards, one per pod for replicas. */}}
{{- define "engagement-monitor.groupId" -}}
{{- $group := .Values.kafka.groupId | default (include "engagement-monitor.fullname" .) }}
{{- if include "engagement-monitor.shard" . }}
{{- $group }}
{{- else }}
{{- printf "%s-$(POD_NAME)" $group }}
{{- end }}
{{- end }}

{{/*
Container resources: .Values.resources when set, else derived from
.Values.sizing (see values.yaml for the figures). In shard mode each pod
holds its share of the posts and applies its share of the events, but
every pod holds every page (the page-totals table).
*/}}
{{- define "engagement-monitor.resources" -}}
{{- if .Values.resources }}
{{- toYaml .Values.resources }}
{{- else }}
{{- $s := .Values.sizing }}
{{- $pods := 1 }}
{{- if include "engagement-monitor.shard" . }}
{{- $pods = max 1 (int (include "engagement-monitor.replicas" .)) }}
{{- end }}
{{- $stateBytes := add (mul (div (int64 $s.posts) $pods) (int64 $s.bytesPerPost)) (mul (int64 $s.pages) (int64 $s.bytesPerPage)) }}
{{- $memoryMiB := add (div $stateBytes 1048576) (int64 $s.baseMiB) }}
{{- $cpuMillis := max (int64 $s.minCpuMillis) (div (mul (div (int64 $s.eventsPerSecond) $pods) 1000) (int64 $s.eventsPerSecondPerCore)) }}
requests:
  cpu: {{ $cpuMillis }}m
  memory: {{ $memoryMiB }}Mi
limits:
  memory: {{ div (mul $memoryMiB (int64 $s.limitPercent)) 100 }}Mi
{{- end }}
{{- end }}

{{/*
A probe of values.probes: with web.tls set, an httpGet probe speaks HTTPS.
Called with (list probe web).
*/}}
{{- define "engagement-monitor.probe" -}}
{{- $probe := deepCopy (index . 0) -}}
{{- $web := index . 1 -}}
{{- if and $web.existingSecret $web.tls $probe.httpGet -}}
{{- $_ := set $probe.httpGet "scheme" "HTTPS" -}}
{{- end -}}
{{- toYaml $probe -}}
{{- end }}
