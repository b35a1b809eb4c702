package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// minSchemaVersion: the dashboard JSON model these dashboards are written for (Grafana 10.4+).
const minSchemaVersion = 39

// The variables Grafana itself provides.
var builtinVars = map[string]bool{
	"__rate_interval": true, "__interval": true, "__interval_ms": true, "__range": true,
	"__range_s": true, "__range_ms": true, "__dashboard": true, "__from": true, "__to": true,
	"__all": true,
}

var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// timeUnits are Grafana's units of a duration; a latency panel must use one of them.
var timeUnits = map[string]bool{"s": true, "ms": true, "µs": true, "ns": true, "m": true, "h": true, "d": true,
	"dtdurations": true, "dtdurationms": true}

// parsed is one dashboard file, parsed strictly.
type parsed struct {
	file string
	dash dashboard.Dashboard
}

// parse decodes a dashboard strictly: unknown fields, wrong types and missing required fields
// are errors, panel options and queries are decoded by their plugin's strict decoder; then the
// SDK's own validation.
//
// The SDK (v0.0.22) returns its error list type even when it is empty, so where it decodes a
// panel-or-row or a query through an interface it takes the empty list for an error and drops
// the decoded value (real errors are still reported). The panels and their queries are
// therefore decoded again here, one by one, with the same strict decoders.
func parse(file string, raw []byte) (*parsed, error) {
	var d dashboard.Dashboard
	if err := realError(d.UnmarshalJSONStrict(raw)); err != nil {
		return nil, fmt.Errorf("%s: strict parse: %w", file, err)
	}
	if err := realError(d.Validate()); err != nil {
		return nil, fmt.Errorf("%s: validation: %w", file, err)
	}
	var top struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	d.Panels = nil
	for i, rp := range top.Panels {
		var head struct {
			Type   string            `json:"type"`
			Panels []json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(rp, &head); err != nil {
			return nil, fmt.Errorf("%s: panels[%d]: %w", file, i, err)
		}
		if head.Type != "row" {
			pn, err := decodePanel(rp)
			if err != nil {
				return nil, fmt.Errorf("%s: panels[%d]: %w", file, i, err)
			}
			d.Panels = append(d.Panels, dashboard.PanelOrRowPanel{Panel: pn})
			continue
		}
		row := &dashboard.RowPanel{}
		if err := realError(row.UnmarshalJSONStrict(rp)); err != nil {
			return nil, fmt.Errorf("%s: panels[%d]: %w", file, i, err)
		}
		row.Panels = nil
		for j, np := range head.Panels {
			pn, err := decodePanel(np)
			if err != nil {
				return nil, fmt.Errorf("%s: panels[%d].panels[%d]: %w", file, i, j, err)
			}
			row.Panels = append(row.Panels, *pn)
		}
		d.Panels = append(d.Panels, dashboard.PanelOrRowPanel{RowPanel: row})
	}
	return &parsed{file: file, dash: d}, nil
}

// decodePanel decodes one (non-row) panel strictly, and its queries as Prometheus queries.
func decodePanel(raw []byte) (*dashboard.Panel, error) {
	pn := &dashboard.Panel{}
	if err := realError(pn.UnmarshalJSONStrict(raw)); err != nil {
		return nil, err
	}
	var t struct {
		Targets []json.RawMessage `json:"targets"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	pn.Targets = nil
	for i, tr := range t.Targets {
		var ds struct {
			Datasource struct {
				Type string `json:"type"`
			} `json:"datasource"`
		}
		if err := json.Unmarshal(tr, &ds); err != nil {
			return nil, fmt.Errorf("targets[%d]: %w", i, err)
		}
		if ds.Datasource.Type != "prometheus" {
			return nil, fmt.Errorf("targets[%d]: not a Prometheus query (datasource type %q)", i, ds.Datasource.Type)
		}
		q := &prometheus.Dataquery{}
		if err := realError(q.UnmarshalJSONStrict(tr)); err != nil {
			return nil, fmt.Errorf("targets[%d]: %w", i, err)
		}
		pn.Targets = append(pn.Targets, q)
	}
	return pn, nil
}

// realError: the SDK returns its error list type even when the list is empty (a non-nil
// interface holding a nil slice).
func realError(err error) error {
	if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
		return nil
	}
	return err
}

// check applies our own rules to one dashboard and returns its problems.
func check(p *parsed) []string {
	var errs []string
	fail := func(format string, args ...any) {
		errs = append(errs, p.file+": "+fmt.Sprintf(format, args...))
	}
	d := &p.dash
	if d.Uid == nil || *d.Uid == "" {
		fail("no uid")
	} else if len(*d.Uid) > 40 {
		fail("uid %q is longer than 40 characters", *d.Uid)
	}
	if d.Title == nil || *d.Title == "" {
		fail("no title")
	}
	if d.SchemaVersion < minSchemaVersion {
		fail("schemaVersion %d < %d", d.SchemaVersion, minSchemaVersion)
	}
	if !contains(d.Tags, "chat") {
		fail("not tagged \"chat\"")
	}
	if !hasChatLink(d.Links) {
		fail("no link to the other chat dashboards (type dashboards, tag chat)")
	}

	vars := map[string]bool{}
	hasDatasourceVar := false
	for _, v := range d.Templating.List {
		if vars[v.Name] {
			fail("variable %q defined twice", v.Name)
		}
		vars[v.Name] = true
		if v.Name == "datasource" && v.Type == dashboard.VariableTypeDatasource &&
			v.Query != nil && v.Query.String != nil && *v.Query.String == "prometheus" {
			hasDatasourceVar = true
		}
		if v.Type == dashboard.VariableTypeQuery {
			if !usesDatasourceVar(v.Datasource) {
				fail("variable %q does not query the datasource variable", v.Name)
			}
			if v.Query == nil || v.Query.String == nil || strings.TrimSpace(*v.Query.String) == "" {
				fail("variable %q has no query", v.Name)
			}
		}
	}
	if !hasDatasourceVar {
		fail("no `datasource` variable of type datasource (query prometheus)")
	}

	ids := map[uint32]string{}
	seenID := func(id uint32, title string) {
		if other, dup := ids[id]; dup {
			fail("panel id %d used by %q and %q", id, other, title)
		}
		ids[id] = title
	}
	for _, pr := range d.Panels {
		if pr.RowPanel != nil {
			r := pr.RowPanel
			seenID(r.Id, "row "+deref(r.Title))
			if deref(r.Title) == "" {
				fail("row %d has no title", r.Id)
			}
			for i := range r.Panels {
				errs = append(errs, checkPanel(p.file, &r.Panels[i], vars, seenID)...)
			}
			continue
		}
		if pr.Panel == nil {
			fail("an empty panel entry")
			continue
		}
		errs = append(errs, checkPanel(p.file, pr.Panel, vars, seenID)...)
	}
	if len(ids) == 0 {
		fail("no panels")
	}
	return errs
}

func checkPanel(file string, pn *dashboard.Panel, vars map[string]bool, seenID func(uint32, string)) []string {
	var errs []string
	title := deref(pn.Title)
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s: panel %q: ", file, title)+fmt.Sprintf(format, args...))
	}
	if pn.Id == nil {
		fail("no id")
	} else {
		seenID(*pn.Id, title)
	}
	if title == "" {
		fail("no title")
	}
	if pn.GridPos == nil || pn.GridPos.W == 0 || pn.GridPos.H == 0 {
		fail("no grid position")
	}
	if !usesDatasourceVar(pn.Datasource) {
		fail("datasource does not use the datasource variable")
	}
	if len(pn.Targets) == 0 {
		fail("no targets")
	}
	refs := map[string]bool{}
	latency := strings.Contains(strings.ToLower(title), "latency")
	for i, t := range pn.Targets {
		pq, ok := t.(*prometheus.Dataquery)
		if !ok {
			fail("target %d is not a Prometheus query (%T)", i, t)
			continue
		}
		ref := deref(pq.RefId)
		if ref == "" || refs[ref] {
			fail("target %d: refId %q missing or repeated", i, ref)
		}
		refs[ref] = true
		if strings.TrimSpace(pq.Expr) == "" {
			fail("target %s: empty expr", ref)
		}
		if !usesDatasourceVar(pq.Datasource) {
			fail("target %s: datasource does not use the datasource variable", ref)
		}
		for _, m := range varRef.FindAllStringSubmatch(pq.Expr, -1) {
			if !builtinVars[m[1]] && !vars[m[1]] {
				fail("target %s: uses $%s, which the dashboard does not define", ref, m[1])
			}
		}
		if strings.Contains(pq.Expr, "histogram_quantile(") && strings.Contains(pq.Expr, "_seconds_bucket") {
			latency = true
		}
	}
	if latency {
		unit := ""
		if pn.FieldConfig != nil && pn.FieldConfig.Defaults.Unit != nil {
			unit = *pn.FieldConfig.Defaults.Unit
		}
		if !timeUnits[unit] {
			fail("a latency panel without a time unit (unit %q)", unit)
		}
	}
	return errs
}

// checkAll: the rules across dashboards (unique uids and titles).
func checkAll(ps []*parsed) []string {
	var errs []string
	uids, titles := map[string]string{}, map[string]string{}
	sort.Slice(ps, func(i, j int) bool { return ps[i].file < ps[j].file })
	for _, p := range ps {
		if uid := deref(p.dash.Uid); uid != "" {
			if other, dup := uids[uid]; dup {
				errs = append(errs, fmt.Sprintf("%s: uid %q already used by %s", p.file, uid, other))
			}
			uids[uid] = p.file
		}
		if title := deref(p.dash.Title); title != "" {
			if other, dup := titles[title]; dup {
				errs = append(errs, fmt.Sprintf("%s: title %q already used by %s", p.file, title, other))
			}
			titles[title] = p.file
		}
	}
	return errs
}

func usesDatasourceVar(ref *common.DataSourceRef) bool {
	if ref == nil || ref.Uid == nil {
		return false
	}
	if ref.Type != nil && *ref.Type != "prometheus" {
		return false
	}
	return *ref.Uid == "${datasource}" || *ref.Uid == "$datasource"
}

func hasChatLink(links []dashboard.DashboardLink) bool {
	for _, l := range links {
		if l.Type == dashboard.DashboardLinkTypeDashboards && contains(l.Tags, "chat") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
