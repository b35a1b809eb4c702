// Command validate checks Grafana dashboards offline: every *.json in the given directories is
// parsed strictly with the grafana-foundation-sdk (unknown fields are errors), validated by
// it, then checked against the chat dashboards' rules (check.go): a title, the `datasource`
// variable on every panel and query, a non-empty PromQL expression per target, unique panel
// ids, a time unit on latency panels, defined variables, and no uid used twice. A directory
// that ships dashboards must hold nothing else (the Helm chart turns each file into a
// ConfigMap), so any other file is an error too.
//
//	validate DIR...
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: validate DIR...")
		os.Exit(2)
	}
	// Panel options and queries are decoded (strictly) by their plugin's types.
	plugins.RegisterDefaultPlugins()

	var errs []string
	var all []*parsed
	panels := 0
	for _, dir := range os.Args[1:] {
		entries, err := os.ReadDir(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "validate:", err)
			os.Exit(2)
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				errs = append(errs, path+": not a dashboard JSON file (the directory must hold only those)")
				continue
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			p, err := parse(path, raw)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			errs = append(errs, check(p)...)
			all = append(all, p)
			panels += countPanels(p)
		}
	}
	errs = append(errs, checkAll(all)...)
	if len(all) == 0 && len(errs) == 0 {
		errs = append(errs, "no dashboards found")
	}
	for _, e := range errs {
		fmt.Fprintln(os.Stderr, "FAIL", e)
	}
	if len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "validate: %d problem(s)\n", len(errs))
		os.Exit(1)
	}
	fmt.Printf("validate: %d dashboards, %d panels: ok\n", len(all), panels)
}

func countPanels(p *parsed) int {
	n := 0
	for _, pr := range p.dash.Panels {
		if pr.Panel != nil {
			n++
		} else if pr.RowPanel != nil {
			n += len(pr.RowPanel.Panels)
		}
	}
	return n
}
