{{/* Names, labels and the pieces every workload shares. */}}

{{- define "chat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "chat.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* chat.component.fullname (dict "root" $ "component" "gateway") */}}
{{- define "chat.component.fullname" -}}
{{- printf "%s-%s" (include "chat.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "chat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chat.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "chat.labels" -}}
{{ include "chat.selectorLabels" . }}
app.kubernetes.io/part-of: chat
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "chat.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "chat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "chat.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The partitions of chat.deliver: the most gateways there can be. */}}
{{- define "chat.deliverPartitions" -}}
{{- $t := index .Values.topics.topics "chat.deliver" | default dict -}}
{{- if not $t.partitions -}}
{{- fail "topics.topics must list chat.deliver with its partitions (one per gateway)" -}}
{{- end -}}
{{- $t.partitions | int -}}
{{- end -}}

{{/*
Checks that values alone cannot express; called from the gateway's template so that any
render runs them.
*/}}
{{- define "chat.validate" -}}
{{- $parts := include "chat.deliverPartitions" . | int -}}
{{- if gt (int .Values.gateway.replicas) $parts -}}
{{- fail (printf "gateway.replicas (%d) exceeds the %d partitions of chat.deliver (topics.topics.\"chat.deliver\".partitions): each gateway reads its own partition; add partitions first" (int .Values.gateway.replicas) $parts) -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (gt (int .Values.gateway.autoscaling.maxReplicas) $parts) -}}
{{- fail (printf "gateway.autoscaling.maxReplicas (%d) exceeds the %d partitions of chat.deliver (topics.topics.\"chat.deliver\".partitions): each gateway reads its own partition; add partitions first" (int .Values.gateway.autoscaling.maxReplicas) $parts) -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (gt (int .Values.gateway.autoscaling.minReplicas) (int .Values.gateway.autoscaling.maxReplicas)) -}}
{{- fail "gateway.autoscaling.minReplicas exceeds gateway.autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.webPush.publicKey (not .Values.webPush.existingSecret) -}}
{{- fail "webPush.publicKey needs webPush.existingSecret (the Secret holding the VAPID private key)" -}}
{{- end -}}
{{- if and .Values.webPush.publicKey (not .Values.webPush.subject) -}}
{{- fail "webPush.publicKey needs webPush.subject (a mailto: or https: URL)" -}}
{{- end -}}
{{- if and (not .Values.mongodb.existingSecret) (not .Values.mongodb.uri) -}}
{{- fail "set mongodb.existingSecret (production) or mongodb.uri" -}}
{{- end -}}
{{- if and (not .Values.redis.existingSecret) (not .Values.redis.url) -}}
{{- fail "set redis.existingSecret (production) or redis.url" -}}
{{- end -}}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) -}}
{{- fail "kafka.sasl.mechanism needs kafka.sasl.existingSecret (the Secret holding the SASL user name and password)" -}}
{{- end -}}
{{- end -}}

{{/* monitoring switch: "auto" follows the prometheus-operator CRDs. */}}
{{- define "chat.monitoringOn" -}}
{{- $e := .enabled -}}
{{- if eq (toString $e) "auto" -}}
{{- if .root.Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{ end -}}
{{- else if $e -}}
true
{{- end -}}
{{- end -}}

{{/* chat.secretEnv NAME SECRET KEY */}}
{{- define "chat.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 | quote }}
      key: {{ index . 2 | quote }}
{{- end -}}

{{/* Environment every container of the chart gets: servers, credentials, ops, logging. */}}
{{- define "chat.commonEnv" -}}
- name: CHAT_KAFKA_BROKERS
  value: {{ .Values.kafka.brokers | quote }}
{{- if .Values.mongodb.existingSecret }}
{{ include "chat.secretEnv" (list "CHAT_MONGO_URI" .Values.mongodb.existingSecret .Values.mongodb.uriKey) }}
{{- else }}
- name: CHAT_MONGO_URI
  value: {{ .Values.mongodb.uri | quote }}
{{- end }}
{{- if .Values.redis.existingSecret }}
{{ include "chat.secretEnv" (list "CHAT_REDIS_URL" .Values.redis.existingSecret .Values.redis.urlKey) }}
{{- else }}
- name: CHAT_REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- with .Values.kafka.securityProtocol }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- if .Values.kafka.sasl.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
{{ include "chat.secretEnv" (list "KAFKA_SASL_USERNAME" .Values.kafka.sasl.existingSecret .Values.kafka.sasl.usernameKey) }}
{{ include "chat.secretEnv" (list "KAFKA_SASL_PASSWORD" .Values.kafka.sasl.existingSecret .Values.kafka.sasl.passwordKey) }}
{{- end }}
{{- range $k, $v := .Values.kafka.config }}
- name: {{ printf "KAFKA_%s" ($k | replace "." "_" | upper) }}
  value: {{ $v | toString | quote }}
{{- end }}
- name: CHAT_OPS_ADDR
  value: "0.0.0.0"
- name: CHAT_OPS_PORT
  value: {{ .Values.opsPort | quote }}
- name: CHAT_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- range $k, $v := .Values.extraEnv }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* CHAT_INSTANCE_ID: the pod's name (static consumer group membership, request ids). */}}
{{- define "chat.instanceEnv" -}}
- name: CHAT_INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end -}}

{{/* Each service's own environment. */}}
{{- define "chat.serviceEnv" -}}
{{- $v := .root.Values -}}
{{- if eq .component "gateway" }}
# The pod's ordinal: its partition of chat.deliver.
- name: CHAT_GATEWAY_INDEX
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
- name: CHAT_GATEWAY_ADDR
  value: "0.0.0.0"
- name: CHAT_GATEWAY_PORT
  value: {{ $v.gateway.port | quote }}
- name: CHAT_GATEWAY_DRAIN
  value: {{ printf "%ds" (int $v.gateway.drainSeconds) | quote }}
- name: CHAT_WIDGET_DIR
  value: {{ $v.gateway.widgetDir | quote }}
{{- with $v.gateway.tls.secretName }}
- name: CHAT_GATEWAY_TLS_CERT
  value: {{ printf "%s/tls.crt" $v.gateway.tls.mountPath | quote }}
- name: CHAT_GATEWAY_TLS_KEY
  value: {{ printf "%s/tls.key" $v.gateway.tls.mountPath | quote }}
{{- end }}
{{- with $v.webPush.publicKey }}
- name: CHAT_VAPID_PUBLIC_KEY
  value: {{ . | quote }}
{{- end }}
{{- else if eq .component "api" }}
{{ include "chat.instanceEnv" . }}
- name: CHAT_API_ADDR
  value: "0.0.0.0"
- name: CHAT_API_PORT
  value: {{ $v.api.port | quote }}
- name: CHAT_API_EXPORT_DIR
  value: {{ $v.api.exports.mountPath | quote }}
{{- with $v.api.tls.secretName }}
- name: CHAT_API_TLS_CERT
  value: {{ printf "%s/tls.crt" $v.api.tls.mountPath | quote }}
- name: CHAT_API_TLS_KEY
  value: {{ printf "%s/tls.key" $v.api.tls.mountPath | quote }}
{{- end }}
{{- else if eq .component "notify" }}
{{ include "chat.instanceEnv" . }}
{{- if $v.webPush.publicKey }}
{{ include "chat.secretEnv" (list "CHAT_VAPID_PRIVATE_KEY" $v.webPush.existingSecret $v.webPush.privateKeyKey) }}
- name: CHAT_VAPID_SUBJECT
  value: {{ $v.webPush.subject | quote }}
{{- end }}
{{- if $v.smtp.url }}
- name: CHAT_SMTP_URL
  value: {{ $v.smtp.url | quote }}
- name: CHAT_SMTP_TLS
  value: {{ $v.smtp.tls | quote }}
{{- with $v.smtp.user }}
- name: CHAT_SMTP_USER
  value: {{ . | quote }}
{{- end }}
{{- if $v.smtp.existingSecret }}
{{ include "chat.secretEnv" (list "CHAT_SMTP_PASSWORD" $v.smtp.existingSecret $v.smtp.passwordKey) }}
{{- end }}
{{- end }}
{{- else if has .component (list "message" "broadcast" "moderation") }}
{{ include "chat.instanceEnv" . }}
{{- end }}
{{- range $k, $val := .values.env }}
- name: {{ $k }}
  value: {{ $val | toString | quote }}
{{- end }}
{{- end -}}

{{/*
A container's environment: the common variables, then the service's own, then its env
values; a later definition of a name replaces an earlier one (e.g. gateway.env.CHAT_LOG_LEVEL
over logLevel), so each name appears once.
*/}}
{{- define "chat.env" -}}
{{- $all := concat (include "chat.commonEnv" .root | fromYamlArray) (include "chat.serviceEnv" . | fromYamlArray) -}}
{{- $seen := dict -}}
{{- $env := list -}}
{{- range reverse $all -}}
{{- if not (hasKey $seen .name) -}}
{{- $_ := set $seen .name true -}}
{{- $env = prepend $env . -}}
{{- end -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{- define "chat.probe" -}}
httpGet:
  path: {{ .path }}
  port: ops
periodSeconds: {{ .p.periodSeconds }}
timeoutSeconds: {{ .p.timeoutSeconds }}
failureThreshold: {{ .p.failureThreshold }}
{{- end -}}

{{- define "chat.topologySpread" -}}
{{- $root := .root -}}
{{- $ctx := . -}}
{{- if $root.Values.topologySpread.enabled }}
topologySpreadConstraints:
{{- range $root.Values.topologySpread.topologyKeys }}
  - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "chat.selectorLabels" $ctx | nindent 8 }}
    {{- if $ctx.deployment }}
    matchLabelKeys: [pod-template-hash]
    {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The pod template of a service: chat.podTemplate (dict "root" $ "component" NAME
"values" .Values.X "args" LIST "deployment" BOOL)
*/}}
{{- define "chat.podTemplate" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $probePaths := dict "ready" "/readyz" "live" "/healthz" -}}
{{- if eq .component "lag-exporter" }}{{ $_ := set $probePaths "ready" "/healthz" }}{{ end -}}
metadata:
  labels:
    {{- include "chat.labels" . | nindent 4 }}
  {{- with (merge (dict) ($v.podAnnotations | default dict) ($root.Values.podAnnotations | default dict)) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "chat.serviceAccountName" $root }}
  automountServiceAccountToken: false
  # No KAFKA_PORT... variables from a Service named kafka (the services read KAFKA_* as
  # librdkafka settings).
  enableServiceLinks: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if eq .component "gateway" }}
  terminationGracePeriodSeconds: {{ add $v.preStopSleepSeconds $v.drainSeconds $v.terminationMarginSeconds }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with include "chat.topologySpread" . | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "chat.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        {{- include "chat.env" . | nindent 8 }}
      ports:
        {{- if eq .component "gateway" }}
        - name: ws
          containerPort: {{ $v.port }}
          protocol: TCP
        {{- else if eq .component "api" }}
        - name: http
          containerPort: {{ $v.port }}
          protocol: TCP
        {{- end }}
        - name: ops
          containerPort: {{ $root.Values.opsPort }}
          protocol: TCP
      startupProbe:
        {{- include "chat.probe" (dict "path" (get $probePaths "live") "p" $root.Values.probes.startup) | nindent 8 }}
      readinessProbe:
        {{- include "chat.probe" (dict "path" (get $probePaths "ready") "p" $root.Values.probes.readiness) | nindent 8 }}
      livenessProbe:
        {{- include "chat.probe" (dict "path" (get $probePaths "live") "p" $root.Values.probes.liveness) | nindent 8 }}
      {{- if and (eq .component "gateway") (gt (int $v.preStopSleepSeconds) 0) }}
      lifecycle:
        preStop:
          sleep:
            seconds: {{ $v.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if eq .component "api" }}
        - name: exports
          mountPath: {{ $v.exports.mountPath }}
        {{- end }}
        {{- if and $v.tls $v.tls.secretName }}
        - name: tls
          mountPath: {{ $v.tls.mountPath }}
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if eq .component "api" }}
    - name: exports
      {{- if $v.exports.existingClaim }}
      persistentVolumeClaim:
        claimName: {{ $v.exports.existingClaim }}
      {{- else }}
      emptyDir:
        sizeLimit: {{ $v.exports.sizeLimit }}
      {{- end }}
    {{- end }}
    {{- if and $v.tls $v.tls.secretName }}
    # the certificate chain and key TLS is served with (CHAT_*_TLS_CERT / _KEY)
    - name: tls
      secret:
        secretName: {{ $v.tls.secretName }}
    {{- end }}
{{- end -}}

{{/* The services that run as Deployments: component name -> values key. */}}
{{- define "chat.deployments" -}}
message: message
broadcast: broadcast
moderation: moderation
notify: notify
api: api
lag-exporter: lagExporter
{{- end -}}
