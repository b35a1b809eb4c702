package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
)

func TestMain(m *testing.M) {
	plugins.RegisterDefaultPlugins()
	os.Exit(m.Run())
}

// base: the committed overview dashboard as a generic JSON tree (it has rows, stat and time
// series panels).
func base(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../dashboards/chat-overview.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// firstPanel: the first non-row panel.
func firstPanel(m map[string]any) map[string]any {
	for _, p := range m["panels"].([]any) {
		pm := p.(map[string]any)
		if pm["type"] != "row" {
			return pm
		}
	}
	return nil
}

func panelTitled(m map[string]any, title string) map[string]any {
	for _, p := range m["panels"].([]any) {
		pm := p.(map[string]any)
		if pm["title"] == title {
			return pm
		}
	}
	return nil
}

func firstTarget(p map[string]any) map[string]any {
	return p["targets"].([]any)[0].(map[string]any)
}

// problems runs parse and check over a JSON tree; a parse error counts as one problem.
func problems(t *testing.T, m map[string]any) []string {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parse("test.json", raw)
	if err != nil {
		return []string{err.Error()}
	}
	return check(p)
}

func TestCommittedDashboardsPass(t *testing.T) {
	entries, err := os.ReadDir("../dashboards")
	if err != nil {
		t.Fatal(err)
	}
	var all []*parsed
	for _, e := range entries {
		raw, err := os.ReadFile("../dashboards/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		p, err := parse(e.Name(), raw)
		if err != nil {
			t.Fatal(err)
		}
		if errs := check(p); len(errs) > 0 {
			t.Errorf("%v", errs)
		}
		if countPanels(p) == 0 {
			t.Errorf("%s: no panels decoded", e.Name())
		}
		all = append(all, p)
	}
	if errs := checkAll(all); len(errs) > 0 {
		t.Errorf("%v", errs)
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m map[string]any)
		want   string
	}{
		{"unknown dashboard field", func(m map[string]any) { m["colour"] = "blue" }, "unexpected field 'colour'"},
		{"unknown panel field", func(m map[string]any) { firstPanel(m)["colour"] = "blue" }, "unexpected field 'colour'"},
		{"unknown query field", func(m map[string]any) { firstTarget(firstPanel(m))["exprr"] = "up" }, "unexpected field 'exprr'"},
		{"wrong type", func(m map[string]any) { firstPanel(m)["title"] = 42 }, "title"},
		{"missing schemaVersion", func(m map[string]any) { delete(m, "schemaVersion") }, "schemaVersion"},
		{"old schemaVersion", func(m map[string]any) { m["schemaVersion"] = 27 }, "schemaVersion 27"},
		{"no panel title", func(m map[string]any) { delete(firstPanel(m), "title") }, "no title"},
		{"empty expr", func(m map[string]any) { firstTarget(firstPanel(m))["expr"] = " " }, "empty expr"},
		{"no targets", func(m map[string]any) { delete(firstPanel(m), "targets") }, "no targets"},
		{"fixed datasource", func(m map[string]any) {
			firstPanel(m)["datasource"] = map[string]any{"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
		}, "datasource does not use the datasource variable"},
		{"fixed query datasource", func(m map[string]any) {
			firstTarget(firstPanel(m))["datasource"] = map[string]any{"type": "prometheus", "uid": "abc"}
		}, "datasource does not use the datasource variable"},
		{"not prometheus", func(m map[string]any) {
			firstTarget(firstPanel(m))["datasource"] = map[string]any{"type": "loki", "uid": "${datasource}"}
		}, "not a Prometheus query"},
		{"duplicate panel id", func(m map[string]any) {
			ps := m["panels"].([]any)
			ps[2].(map[string]any)["id"] = ps[1].(map[string]any)["id"]
		}, "panel id"},
		{"latency without unit", func(m map[string]any) {
			fc := panelTitled(m, "Send → ack latency")["fieldConfig"].(map[string]any)
			delete(fc["defaults"].(map[string]any), "unit")
		}, "latency panel without a time unit"},
		{"latency in bytes", func(m map[string]any) {
			fc := panelTitled(m, "Moderation verdict latency")["fieldConfig"].(map[string]any)
			fc["defaults"].(map[string]any)["unit"] = "bytes"
		}, "latency panel without a time unit"},
		{"undefined variable", func(m map[string]any) {
			firstTarget(firstPanel(m))["expr"] = `sum(chat_gateway_connections{instance=~"$pod"})`
		}, "uses $pod"},
		{"no datasource variable", func(m map[string]any) {
			m["templating"] = map[string]any{"list": []any{}}
		}, "no `datasource` variable"},
		{"no chat tag", func(m map[string]any) { m["tags"] = []any{"other"} }, "not tagged"},
		{"no links", func(m map[string]any) { delete(m, "links") }, "no link"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base(t)
			if errs := problems(t, m); len(errs) != 0 {
				t.Fatalf("the base dashboard fails: %v", errs)
			}
			c.mutate(m)
			errs := problems(t, m)
			if !strings.Contains(strings.Join(errs, "\n"), c.want) {
				t.Errorf("want a problem with %q, got %v", c.want, errs)
			}
		})
	}
}

func TestDuplicateUID(t *testing.T) {
	m := base(t)
	raw, _ := json.Marshal(m)
	a, err := parse("a.json", raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parse("b.json", raw)
	if err != nil {
		t.Fatal(err)
	}
	errs := checkAll([]*parsed{a, b})
	if !strings.Contains(strings.Join(errs, "\n"), `uid "chat-overview" already used`) {
		t.Errorf("duplicate uid not reported: %v", errs)
	}
}
