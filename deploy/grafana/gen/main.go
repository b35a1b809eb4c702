// Command gen writes the chat platform's Grafana dashboards (deploy/grafana/dashboards/*.json)
// with the grafana-foundation-sdk builders. The JSON is committed; the dashboards test checks
// that it is exactly what this program writes, so edit here and run
//
//	go run ./gen -out dashboards
//
// from deploy/grafana. Every query uses only the metrics of docs/metrics.md (raw series, no
// recording rules, so the dashboards work without them) and the `datasource` variable.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The SLOs the dashboards draw (seed 002's performance table; seed 003 for the sender's view).
const (
	sloDeliverP99    = 0.200 // send → deliver p99, seconds: what ChatDeliveryLatencyHigh alerts on ("< 200 ms for message delivery"; seed 002's goal is < 100 ms)
	sloAckP99        = 0.200 // send -> ack p99, seconds ("< 200 ms for message delivery")
	sloModerationP99 = 0.500 // moderation verdict p99, seconds ("moderation speed < 500 ms")
	sloAvailability  = 0.999 // targets up ("availability 99.9%")
	rateWindow       = "$__rate_interval"
)

var dsRef = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}

func ptr[T any](v T) *T { return &v }

// q is one PromQL target: an expression and its legend.
type q struct{ expr, legend string }

// board holds a dashboard under construction and numbers its panels.
type board struct {
	b      *dashboard.DashboardBuilder
	nextID uint32
}

func newBoard(uid, title, description string) *board {
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"chat"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone("browser").
		// Every chat dashboard, by tag, in one menu; the time range and variables follow.
		Link(dashboard.NewDashboardLinkBuilder("Chat dashboards").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"chat"}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true)).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus"))
	return &board{b: b, nextID: 1}
}

// queryVar adds a variable filled from Prometheus (label_values(...)).
func (d *board) queryVar(name, label, query string, multi bool) {
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(dsRef).
		Query(dashboard.StringOrMap{String: ptr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if multi {
		// All expands to the alternation of the values found, so a service's dashboard
		// selects only that service's instances.
		v = v.Multi(true).IncludeAll(true).
			Current(dashboard.VariableOption{
				Selected: ptr(true),
				Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
				Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
			})
	}
	d.b = d.b.WithVariable(v)
}

func (d *board) row(title string) {
	d.b = d.b.WithRow(dashboard.NewRowBuilder(title).Id(d.id()))
}

func (d *board) id() uint32 {
	id := d.nextID
	d.nextID++
	return id
}

func targets(qs []q) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], 0, len(qs))
	for i, t := range qs {
		p := prometheus.NewDataqueryBuilder().
			Datasource(dsRef).
			RefId(string(rune('A' + i))).
			Expr(t.expr).
			Range()
		if t.legend != "" {
			p = p.LegendFormat(t.legend)
		}
		out = append(out, p)
	}
	return out
}

// thresholds: green below the limit, red from it (for an SLO drawn on a panel).
func thresholds(limit float64) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps([]dashboard.Threshold{{Color: "green"}, {Value: ptr(limit), Color: "red"}})
}

// thresholdsBelow: red below the limit, green from it (availability).
func thresholdsBelow(limit float64) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps([]dashboard.Threshold{{Color: "red"}, {Value: ptr(limit), Color: "green"}})
}

// opts are a panel's optional settings.
type opts struct {
	width, height uint32
	description   string
	slo           *dashboard.ThresholdsConfigBuilder // drawn as a dashed line
	stack         bool
	min           *float64
}

// ts adds a time series panel.
func (d *board) ts(title, unit string, o opts, qs ...q) {
	w, h := o.width, o.height
	if w == 0 {
		w = 12
	}
	if h == 0 {
		h = 8
	}
	p := timeseries.NewPanelBuilder().
		Id(d.id()).
		Title(title).
		Datasource(dsRef).
		Unit(unit).
		Span(w).
		Height(h).
		Targets(targets(qs)).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending))
	if o.description != "" {
		p = p.Description(o.description)
	}
	if o.slo != nil {
		p = p.Thresholds(o.slo).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().
				Mode(common.GraphThresholdsStyleModeDashed))
	}
	if o.stack {
		p = p.Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
			FillOpacity(20)
	}
	if o.min != nil {
		p = p.Min(*o.min)
	}
	d.b = d.b.WithPanel(p)
}

// stat adds a single-value panel (the last value), coloured by its thresholds.
func (d *board) stat(title, unit string, th *dashboard.ThresholdsConfigBuilder, description string, qs ...q) {
	p := stat.NewPanelBuilder().
		Id(d.id()).
		Title(title).
		Description(description).
		Datasource(dsRef).
		Unit(unit).
		Decimals(unitDecimals(unit)).
		Span(6).
		Height(5).
		Targets(targets(qs)).
		Thresholds(th).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeArea).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	d.b = d.b.WithPanel(p)
}

func unitDecimals(unit string) float64 {
	if unit == "percentunit" {
		return 3
	}
	return 0
}

// ---- PromQL helpers ----

// p99 (or another quantile) of a histogram, summed over the given labels.
func quantile(qu, metric, sel, by string) string {
	by = strings.TrimSpace("le " + by)
	by = strings.Join(strings.Fields(strings.ReplaceAll(by, ",", " ")), ", ")
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s) (rate(%s_bucket%s[%s])))", qu, by, metric, sel, rateWindow)
}

func rate(metric, sel, by string) string {
	if by == "" {
		return fmt.Sprintf("sum(rate(%s%s[%s]))", metric, sel, rateWindow)
	}
	return fmt.Sprintf("sum by (%s) (rate(%s%s[%s]))", by, metric, sel, rateWindow)
}

// perSecond of a histogram's observations.
func opsRate(metric, sel, by string) string { return rate(metric+"_count", sel, by) }

const inst = `{instance=~"$instance"}`

// instAnd adds matchers to the instance selector.
func instAnd(matchers string) string { return `{instance=~"$instance", ` + matchers + `}` }

// ---- shared rows of the per-service dashboards ----

func (d *board) processRow() {
	d.row("Process")
	d.ts("Up", "short", opts{width: 6, description: "1 while Prometheus scrapes the instance, 0 when it does not answer."},
		q{"up" + inst, "{{instance}}"})
	d.ts("CPU", "percentunit", opts{width: 6, description: "CPU time per second (1 = one core), user + system."},
		q{fmt.Sprintf("rate(process_cpu_seconds_total%s[%s])", inst, rateWindow), "{{instance}}"})
	d.ts("Resident memory", "bytes", opts{width: 6},
		q{"process_resident_memory_bytes" + inst, "{{instance}}"})
	d.ts("Open file descriptors", "short", opts{width: 6, description: "Open descriptors against the open-files limit."},
		q{"process_open_fds" + inst, "{{instance}} open"},
		q{"process_max_fds" + inst, "{{instance}} limit"})
}

// kafkaRow: the service's own producer/consumer (consumer true when it consumes).
func (d *board) kafkaRow(consumer bool) {
	d.row("Kafka")
	d.ts("Produced records /s by topic", "short", opts{width: 8, description: "Records the broker acknowledged."},
		q{rate("chat_kafka_produced_total", inst, "topic"), "{{topic}}"})
	d.ts("Produce errors /s by topic", "short", opts{width: 8, description: "Records that failed delivery."},
		q{rate("chat_kafka_produce_errors_total", inst, "topic"), "{{topic}}"})
	if !consumer {
		return
	}
	d.ts("Consumed records /s by topic", "short", opts{width: 8},
		q{rate("chat_kafka_consumed_total", inst, "topic"), "{{topic}}"})
	d.ts("Consumer lag by topic", "short", opts{width: 8, description: "Records behind the high watermark on this service's assigned partitions (librdkafka statistics). The broker's view, which keeps reporting when the consumer is down, is on the Kafka dashboard."},
		q{"sum by (topic) (chat_kafka_consumer_lag" + inst + ")", "{{topic}}"})
	d.ts("Offset commits /s by result", "short", opts{width: 8},
		q{rate("chat_kafka_commits_total", inst, "result"), "{{result}}"})
	d.ts("Consumer errors /s", "short", opts{width: 8},
		q{rate("chat_kafka_consume_errors_total", inst, ""), "errors"})
}

func (d *board) mongoRow() {
	d.row("MongoDB")
	d.ts("MongoDB p99 latency by op", "s", opts{width: 8},
		q{quantile("0.99", "chat_mongo_op_seconds", inst, "op"), "{{op}}"})
	d.ts("MongoDB ops /s by op", "ops", opts{width: 8},
		q{opsRate("chat_mongo_op_seconds", inst, "op"), "{{op}}"})
	d.ts("MongoDB errors /s by op", "short", opts{width: 8},
		q{rate("chat_mongo_errors_total", inst, "op"), "{{op}}"})
}

func (d *board) redisRow() {
	d.row("Redis")
	d.ts("Redis latency", "s", opts{width: 8, description: "One round trip (a command or a pipeline)."},
		q{quantile("0.99", "chat_redis_op_seconds", inst, ""), "p99"},
		q{quantile("0.5", "chat_redis_op_seconds", inst, ""), "p50"})
	d.ts("Redis round trips /s", "ops", opts{width: 8},
		q{opsRate("chat_redis_op_seconds", inst, ""), "round trips"})
	d.ts("Redis errors /s", "short", opts{width: 8, description: "I/O, protocol or error replies."},
		q{rate("chat_redis_errors_total", inst, ""), "errors"})
}

// service starts a per-service dashboard with its instance variable (from a metric that
// service alone exposes).
func service(name, title, description, instanceMetric string) *board {
	d := newBoard("chat-"+name, "Chat / "+title, description)
	d.queryVar("instance", "Instance", fmt.Sprintf("label_values(%s, instance)", instanceMetric), true)
	return d
}

// ---- the dashboards ----

func overview() *board {
	d := newBoard("chat-overview", "Chat / Overview",
		"The chat platform at a glance: its SLOs (delivery, send→ack and moderation p99, availability), traffic and errors.")
	d.queryVar("job", "Scrape job", "label_values(up, job)", true)

	d.row("SLOs")
	d.stat("Delivery p99 (send → deliver)", "s", thresholds(sloDeliverP99),
		"p99 from a send received by its gateway to the message frame queued for each receiver, over all gateways. SLO: 200 ms (the alert's; the design's goal is 100 ms).",
		q{quantile("0.99", "chat_gateway_deliver_seconds", "", ""), "p99"})
	d.stat("Send → ack p99", "s", thresholds(sloAckP99),
		"p99 from a send frame received to its ack queued (stored in MongoDB first). SLO: 200 ms.",
		q{quantile("0.99", "chat_gateway_send_ack_seconds", "", ""), "p99"})
	d.stat("Moderation verdict p99", "s", thresholds(sloModerationP99),
		"p99 from a message stored to its moderation verdict. SLO: 500 ms.",
		q{quantile("0.99", "chat_moderation_lag_seconds", "", ""), "p99"})
	d.stat("Availability (targets up)", "percentunit", thresholdsBelow(sloAvailability),
		"Share of the selected scrape jobs' targets that answer. SLO: 99.9 %.",
		q{`avg(up{job=~"$job"})`, "up"})

	d.ts("Delivery latency (send → deliver)", "s", opts{width: 8, slo: thresholds(sloDeliverP99), min: ptr(0.0)},
		q{quantile("0.99", "chat_gateway_deliver_seconds", "", ""), "p99"},
		q{quantile("0.5", "chat_gateway_deliver_seconds", "", ""), "p50"})
	d.ts("Send → ack latency", "s", opts{width: 8, slo: thresholds(sloAckP99), min: ptr(0.0)},
		q{quantile("0.99", "chat_gateway_send_ack_seconds", "", ""), "p99"},
		q{quantile("0.5", "chat_gateway_send_ack_seconds", "", ""), "p50"})
	d.ts("Moderation verdict latency", "s", opts{width: 8, slo: thresholds(sloModerationP99), min: ptr(0.0)},
		q{quantile("0.99", "chat_moderation_lag_seconds", "", ""), "p99"},
		q{quantile("0.5", "chat_moderation_lag_seconds", "", ""), "p50"})
	d.ts("Targets up by job", "short", opts{width: 24, height: 6, description: "Targets answering / targets scraped, per job."},
		q{`sum by (job) (up{job=~"$job"})`, "{{job}} up"},
		q{`count by (job) (up{job=~"$job"})`, "{{job}} scraped"})

	d.row("Traffic")
	d.ts("Open connections", "short", opts{width: 8, description: "Open WebSockets over all gateways."},
		q{"sum(chat_gateway_connections)", "connections"})
	d.ts("Messages stored /s", "short", opts{width: 8},
		q{rate("chat_message_stored_total", "", ""), "stored"})
	d.ts("Connects /s by result", "short", opts{width: 8},
		q{rate("chat_gateway_connects_total", "", "result"), "{{result}}"})
	d.ts("Client frames /s by type", "short", opts{stack: true},
		q{rate("chat_gateway_frames_total", "", "type"), "{{type}}"})
	d.ts("Server frames /s by type", "short", opts{stack: true},
		q{rate("chat_gateway_frames_sent_total", "", "type"), "{{type}}"})

	d.row("Errors")
	d.ts("Error frames /s by code", "short", opts{width: 8},
		q{rate("chat_gateway_errors_total", "", "code"), "{{code}}"})
	d.ts("Error ratio", "percentunit", opts{width: 8, description: "Error frames per client frame; server API 5xx per request."},
		q{fmt.Sprintf("%s / clamp_min(%s, 1e-9)", rate("chat_gateway_errors_total", "", ""), rate("chat_gateway_frames_total", "", "")), "gateway errors / frames"},
		q{fmt.Sprintf("%s / clamp_min(%s, 1e-9)", rate("chat_api_requests_total", `{class="5xx"}`, ""), rate("chat_api_requests_total", "", "")), "api 5xx / requests"})
	d.ts("Disconnects /s by close code", "short", opts{width: 8},
		q{rate("chat_gateway_disconnects_total", "", "code"), "{{code}}"})

	d.row("Backlog")
	d.ts("Consumer lag by group", "short", opts{description: "Records behind, from the brokers' committed offsets (the Kafka dashboard has the detail)."},
		q{"sum by (group) (chat_kafka_group_lag)", "{{group}}"})
	d.ts("Dead letters /s", "short", opts{description: "Notifications given up and written to the dead-letter topic."},
		q{rate("chat_notify_dlq_total", "", ""), "dead letters"})
	return d
}

func gateway() *board {
	d := service("gateway", "Gateway", "The WebSocket gateways: connections, frames, latency, errors; the process, Kafka, MongoDB and Redis.",
		"chat_gateway_connections")
	d.row("Connections")
	d.ts("Open connections", "short", opts{width: 8},
		q{"chat_gateway_connections" + inst, "{{instance}}"})
	d.ts("Connects /s by result", "short", opts{width: 8},
		q{rate("chat_gateway_connects_total", inst, "result"), "{{result}}"})
	d.ts("Disconnects /s by close code", "short", opts{width: 8},
		q{rate("chat_gateway_disconnects_total", inst, "code"), "{{code}}"})
	d.ts("Authentication latency p99", "s", opts{width: 8, description: "From the upgrade to the welcome (or the refusal)."},
		q{quantile("0.99", "chat_gateway_auth_seconds", inst, ""), "p99"})
	d.ts("Authentications pending", "short", opts{width: 8},
		q{"chat_gateway_auth_pending" + inst, "{{instance}}"})
	d.ts("Draining", "short", opts{width: 8, description: "1 while a gateway drains (SIGTERM); connections it closed with 1012."},
		q{"chat_gateway_draining" + inst, "{{instance}} draining"},
		q{rate("chat_gateway_drain_closes_total", inst, "instance"), "{{instance}} drain closes /s"})

	d.row("Frames and latency")
	d.ts("Client frames /s by type", "short", opts{stack: true},
		q{rate("chat_gateway_frames_total", inst, "type"), "{{type}}"})
	d.ts("Server frames /s by type", "short", opts{stack: true},
		q{rate("chat_gateway_frames_sent_total", inst, "type"), "{{type}}"})
	d.ts("Send → ack latency", "s", opts{width: 8, slo: thresholds(sloAckP99), min: ptr(0.0)},
		q{quantile("0.99", "chat_gateway_send_ack_seconds", inst, ""), "p99"},
		q{quantile("0.5", "chat_gateway_send_ack_seconds", inst, ""), "p50"})
	d.ts("Delivery latency (send → deliver)", "s", opts{width: 8, slo: thresholds(sloDeliverP99), min: ptr(0.0)},
		q{quantile("0.99", "chat_gateway_deliver_seconds", inst, ""), "p99"},
		q{quantile("0.5", "chat_gateway_deliver_seconds", inst, ""), "p50"})
	d.ts("Join latency p99", "s", opts{width: 8},
		q{quantile("0.99", "chat_gateway_join_seconds", inst, ""), "p99"})
	d.ts("Deliveries /s", "short", opts{width: 8},
		q{rate("chat_gateway_deliveries_total", inst, "instance"), "{{instance}}"})
	d.ts("Error frames /s by code", "short", opts{width: 8},
		q{rate("chat_gateway_errors_total", inst, "code"), "{{code}}"})
	d.ts("Write queue drops /s", "short", opts{width: 8, description: "Frames dropped because a client's write queue was full."},
		q{rate("chat_gateway_write_queue_drops_total", inst, "instance"), "{{instance}}"})

	d.processRow()
	d.kafkaRow(true)
	d.mongoRow()
	d.redisRow()
	return d
}

func message() *board {
	d := service("message", "Message", "The message service: sends stored in order, updates, rejections, latency; the process, Kafka, MongoDB and Redis.",
		"chat_message_stored_total")
	d.row("Messages")
	d.ts("Stored /s", "short", opts{width: 8},
		q{rate("chat_message_stored_total", inst, "instance"), "{{instance}}"})
	d.ts("Updates, duplicates /s", "short", opts{width: 8},
		q{rate("chat_message_updates_total", inst, ""), "updates"},
		q{rate("chat_message_duplicates_total", inst, ""), "duplicates"})
	d.ts("Rejected /s by code", "short", opts{width: 8},
		q{rate("chat_message_rejected_total", inst, "code"), "{{code}}"})
	d.ts("Store latency", "s", opts{width: 8},
		q{quantile("0.99", "chat_message_store_seconds", inst, ""), "p99"},
		q{quantile("0.5", "chat_message_store_seconds", inst, ""), "p50"})
	d.ts("Batch latency p99", "s", opts{width: 8},
		q{quantile("0.99", "chat_message_batch_seconds", inst, ""), "p99"})
	d.ts("Moderation check latency p99", "s", opts{width: 8, description: "The message service's inline moderation step."},
		q{quantile("0.99", "chat_message_moderation_seconds", inst, ""), "p99"})
	d.ts("Stored /s by tenant", "short", opts{width: 24, stack: true, description: "Bounded tenant labels: the allowlist, the first tenants seen, the rest as _other."},
		q{rate("chat_message_tenant_stored_total", inst, "tenant"), "{{tenant}}"})
	d.processRow()
	d.kafkaRow(true)
	d.mongoRow()
	d.redisRow()
	return d
}

func broadcast() *board {
	d := service("broadcast", "Broadcast", "The broadcast service: fan-out of stored messages and events to the gateways; the process, Kafka and Redis.",
		"chat_broadcast_events_total")
	d.row("Fan-out")
	d.ts("Deliveries /s", "short", opts{width: 8, description: "Deliveries routed to gateways."},
		q{rate("chat_broadcast_deliveries_total", inst, "instance"), "{{instance}}"})
	d.ts("Events /s", "short", opts{width: 8},
		q{rate("chat_broadcast_events_total", inst, "instance"), "{{instance}}"})
	d.ts("Skipped, invalid records /s", "short", opts{width: 8},
		q{rate("chat_broadcast_skipped_total", inst, ""), "skipped"},
		q{rate("chat_broadcast_invalid_records_total", inst, ""), "invalid"})
	d.ts("Batch latency p99", "s", opts{},
		q{quantile("0.99", "chat_broadcast_batch_seconds", inst, ""), "p99"})
	d.ts("Redis lookup latency p99", "s", opts{description: "Looking up which gateways hold a room's members."},
		q{quantile("0.99", "chat_broadcast_redis_lookup_seconds", inst, ""), "p99"})
	d.processRow()
	d.kafkaRow(true)
	d.redisRow()
	return d
}

func moderation() *board {
	d := service("moderation", "Moderation", "The moderation service: verdict latency against its 500 ms SLO, decisions; the process, Kafka, MongoDB and Redis.",
		"chat_moderation_checked_total")
	d.row("Verdicts")
	d.ts("Verdict latency (stored → decided)", "s", opts{width: 8, slo: thresholds(sloModerationP99), min: ptr(0.0)},
		q{quantile("0.99", "chat_moderation_lag_seconds", inst, ""), "p99"},
		q{quantile("0.5", "chat_moderation_lag_seconds", inst, ""), "p50"})
	d.ts("Checked /s", "short", opts{width: 8},
		q{rate("chat_moderation_checked_total", inst, "instance"), "{{instance}}"})
	d.ts("Check latency p99", "s", opts{width: 8, description: "Running the rules over one message."},
		q{quantile("0.99", "chat_moderation_check_seconds", inst, ""), "p99"})
	d.ts("Decisions /s by action and kind", "short", opts{},
		q{rate("chat_moderation_decisions_total", inst, "action, kind"), "{{action}} {{kind}}"})
	d.ts("Decisions /s by tenant", "short", opts{stack: true},
		q{rate("chat_moderation_tenant_decisions_total", inst, "tenant"), "{{tenant}}"})
	d.processRow()
	d.kafkaRow(true)
	d.mongoRow()
	d.redisRow()
	return d
}

func notify() *board {
	d := service("notify", "Notify", "The notify service: push, email and webhook delivery outcomes and latency, dead letters; the process, Kafka, MongoDB and Redis.",
		"chat_notify_records_total")
	d.row("Delivery")
	d.ts("Sends /s by channel and outcome", "short", opts{},
		q{rate("chat_notify_sends_total", inst, "channel, outcome"), "{{channel}} {{outcome}}"})
	d.ts("Send latency p99 by channel", "s", opts{},
		q{quantile("0.99", "chat_notify_send_seconds", inst, "channel"), "{{channel}}"})
	d.ts("Dead-lettered /s", "short", opts{width: 8},
		q{rate("chat_notify_dlq_total", inst, ""), "dead letters"})
	d.ts("Pipeline lag p99", "s", opts{width: 8},
		q{quantile("0.99", "chat_notify_lag_seconds", inst, ""), "p99"})
	d.ts("Outbox jobs", "short", opts{width: 8},
		q{"sum(chat_notify_outbox_jobs" + inst + ")", "jobs"})
	d.ts("Sends /s by tenant", "short", opts{width: 24, stack: true},
		q{rate("chat_notify_tenant_sends_total", inst, "tenant"), "{{tenant}}"})
	d.processRow()
	d.kafkaRow(true)
	d.mongoRow()
	d.redisRow()
	return d
}

func api() *board {
	d := service("api", "Server API", "The server API: requests by route and class, latency, rate limiting, webhooks and jobs; the process, Kafka, MongoDB and Redis.",
		"chat_api_requests_total")
	d.row("Requests")
	d.ts("Requests /s by route", "reqps", opts{},
		q{rate("chat_api_requests_total", inst, "route"), "{{route}}"})
	d.ts("Requests /s by class", "reqps", opts{stack: true},
		q{rate("chat_api_requests_total", inst, "class"), "{{class}}"})
	d.ts("Latency p99 by route", "s", opts{},
		q{quantile("0.99", "chat_api_request_seconds", inst, "route"), "{{route}}"})
	d.ts("5xx ratio", "percentunit", opts{},
		q{fmt.Sprintf("%s / clamp_min(%s, 1e-9)", rate("chat_api_requests_total", instAnd(`class="5xx"`), ""), rate("chat_api_requests_total", inst, "")), "5xx / requests"})
	d.ts("Rate limited /s", "short", opts{width: 8},
		q{rate("chat_api_rate_limited_total", inst, ""), "rate limited"})
	d.ts("Webhook deliveries /s by outcome", "short", opts{width: 8},
		q{rate("chat_api_webhook_deliveries_total", inst, "outcome"), "{{outcome}}"})
	d.ts("Jobs /s by kind and outcome", "short", opts{width: 8},
		q{rate("chat_api_jobs_total", inst, "kind, outcome"), "{{kind}} {{outcome}}"})
	d.ts("Requests /s by tenant", "reqps", opts{width: 24, stack: true},
		q{rate("chat_api_tenant_requests_total", inst, "tenant"), "{{tenant}}"})
	d.processRow()
	d.kafkaRow(false)
	d.mongoRow()
	d.redisRow()
	return d
}

func tenant() *board {
	d := newBoard("chat-tenant", "Chat / Tenant",
		"One tenant across the platform: connections, messages, API requests, moderation decisions, notifications. Tenants beyond the bounded label set (CHAT_METRICS_TENANTS, CHAT_METRICS_TENANTS_MAX) are counted as _other.")
	d.queryVar("tenant", "Tenant", "label_values(chat_gateway_tenant_connections, tenant)", false)
	sel := `{tenant=~"$tenant"}`
	d.ts("Open connections", "short", opts{width: 8, description: "Authenticated WebSockets of the tenant, per gateway."},
		q{"sum by (instance) (chat_gateway_tenant_connections" + sel + ")", "{{instance}}"})
	d.ts("Messages stored /s", "short", opts{width: 8},
		q{rate("chat_message_tenant_stored_total", sel, ""), "stored"})
	d.ts("Share of messages stored", "percentunit", opts{width: 8},
		q{fmt.Sprintf("%s / clamp_min(%s, 1e-9)", rate("chat_message_tenant_stored_total", sel, ""), rate("chat_message_tenant_stored_total", "", "")), "share"})
	d.ts("Server API requests /s", "reqps", opts{width: 8},
		q{rate("chat_api_tenant_requests_total", sel, ""), "requests"})
	d.ts("Moderation decisions /s", "short", opts{width: 8},
		q{rate("chat_moderation_tenant_decisions_total", sel, ""), "decisions"})
	d.ts("Notification sends /s", "short", opts{width: 8},
		q{rate("chat_notify_tenant_sends_total", sel, ""), "sends"})
	return d
}

func kafka() *board {
	d := newBoard("chat-kafka", "Chat / Kafka",
		"Kafka from the brokers' side (chat-admin lag serve: committed offsets against high watermarks, which keeps reporting when a consumer is down) and from the services' clients.")
	d.queryVar("group", "Consumer group", "label_values(chat_kafka_group_lag, group)", true)
	sel := `{group=~"$group"}`
	d.row("Consumer lag")
	d.ts("Lag by group and topic", "short", opts{description: "Records behind the high watermark, summed over the topic's partitions."},
		q{"sum by (group, topic) (chat_kafka_group_lag" + sel + ")", "{{group}} {{topic}}"})
	d.ts("Worst partition lag by group and topic", "short", opts{},
		q{"max by (group, topic) (chat_kafka_group_lag_max" + sel + ")", "{{group}} {{topic}}"})
	d.ts("Lag growth /s by group and topic", "short", opts{description: "Positive while consumers fall behind."},
		q{fmt.Sprintf("sum by (group, topic) (deriv(chat_kafka_group_lag%s[5m]))", sel), "{{group}} {{topic}}"})
	d.ts("Partition lag (consumers' view)", "short", opts{description: "The services' own librdkafka view of their assigned partitions."},
		q{`max by (topic, partition) (chat_kafka_consumer_lag)`, "{{topic}}[{{partition}}]"})
	d.row("Throughput")
	d.ts("Produced records /s by topic", "short", opts{width: 8},
		q{rate("chat_kafka_produced_total", "", "topic"), "{{topic}}"})
	d.ts("Consumed records /s by topic", "short", opts{width: 8},
		q{rate("chat_kafka_consumed_total", "", "topic"), "{{topic}}"})
	d.ts("Produce errors /s by topic", "short", opts{width: 8},
		q{rate("chat_kafka_produce_errors_total", "", "topic"), "{{topic}}"})
	d.row("Dead letters")
	d.ts("Dead-letter topic size", "short", opts{description: "Records in the dead-letter topics (sum of the partitions' high watermarks)."},
		q{`sum by (topic) (chat_kafka_topic_high_watermark{topic=~".*[.]dlq"})`, "{{topic}}"})
	d.ts("Dead-letter growth /s", "short", opts{description: "Records written to dead-letter topics, from the brokers and from the notify service."},
		q{`sum by (topic) (deriv(chat_kafka_topic_high_watermark{topic=~".*[.]dlq"}[5m]))`, "{{topic}}"},
		q{rate("chat_notify_dlq_total", "", ""), "notify dlq writes"})
	return d
}

func main() {
	out := flag.String("out", "dashboards", "directory to write the dashboards into")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, d := range []*board{overview(), gateway(), message(), broadcast(), moderation(), notify(), api(), tenant(), kafka()} {
		dash, err := d.b.Build()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		// The SDK's default link placement ("inControlsMenu") would hide the links in the
		// controls menu of recent Grafana versions; without it they show above the panels.
		for i := range dash.Links {
			dash.Links[i].Placement = nil
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(dash); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		path := filepath.Join(*out, *dash.Uid+".json")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}
