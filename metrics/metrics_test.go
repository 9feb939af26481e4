package metrics

import (
	"slices"
	"strings"
	"testing"
	"time"

	"obmd/internal/buildinfo"
)

// A client can send any method and any path; neither becomes a new label
// value. Operation names become snake_case labels.
func TestLabelsStayBounded(t *testing.T) {
	t.Parallel()
	m := New(buildinfo.Info{Version: "v1", GoVersion: "go1.26.8"})
	m.ObserveHTTP("", "GET", 404, time.Millisecond)
	m.ObserveHTTP("", "X-ANY-TOKEN-A-CLIENT-SENDS", 405, time.Millisecond)
	m.ObserveHTTP("/node/:node_id", "PUT", 200, time.Millisecond)
	m.ObserveOperation("power cycle", "ok", time.Second)

	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]string{}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			series[f.GetName()] = append(series[f.GetName()], strings.Join(labels, ","))
		}
	}
	want := []string{"code=200,method=PUT,route=/node/:node_id", "code=404,method=GET,route=unmatched", "code=405,method=other,route=unmatched"}
	got := series["obmd_http_request_duration_seconds"]
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("HTTP series %q, want %q", got, want)
	}
	if got := series["obmd_bmc_operation_duration_seconds"]; !slices.Equal(got, []string{"operation=power_cycle,outcome=ok"}) {
		t.Errorf("BMC operation series %q", got)
	}
	if got := series["obmd_build_info"]; !slices.Equal(got, []string{"goversion=go1.26.8,revision=,version=v1"}) {
		t.Errorf("build info series %q", got)
	}
}
