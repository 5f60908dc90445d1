package status

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAggregatorKeepsNewestPerDevice(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	a := NewAggregator(func() uint64 { return 4096 })
	add := []struct {
		r    Report
		kept bool
	}{
		{Report{DeviceID: "d1", Channel: "stable", Sequence: 1, Version: "1.0", State: StateDownloading, Time: t0}, true},
		{Report{DeviceID: "d1", Channel: "stable", Sequence: 1, Version: "1.0", State: StateInstalled, BytesSeed: 100, BytesLAN: 900, Time: t0.Add(time.Second)}, true},
		// Delivered late: older than what d1 already said.
		{Report{DeviceID: "d1", Channel: "stable", Sequence: 1, Version: "1.0", State: StateDownloading, Time: t0.Add(time.Millisecond)}, false},
		{Report{DeviceID: "d2", Channel: "stable", Sequence: 2, Version: "1.1", State: StateFailed, Error: "health check failed", BytesPeer: 50, Time: t0}, true},
		{Report{DeviceID: "d3", Channel: "beta", Sequence: 9, Version: "2.0", State: StateRolledBack, Time: t0}, true},
		{Report{DeviceID: "d4", Channel: "stable", Sequence: 1, Version: "1.0", State: StateDownloading, Time: t0}, true},
		// Same second: the outcome wins over downloading, whatever the order.
		{Report{DeviceID: "d4", Channel: "stable", Sequence: 1, Version: "1.0", State: StateInstalled, BytesLAN: 1000, Time: t0}, true},
		{Report{DeviceID: "d4", Channel: "stable", Sequence: 1, Version: "1.0", State: StateDownloading, Time: t0}, false},
	}
	for i, c := range add {
		if got := a.Add(c.r); got != c.kept {
			t.Fatalf("report %d kept=%v, want %v", i, got, c.kept)
		}
	}
	s := a.Snapshot()
	if s.Devices != 4 || s.SeedBytesServed != 4096 || len(s.Channels) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	beta, stable := s.Channels[0], s.Channels[1]
	if beta.Channel != "beta" || len(beta.Failures) != 1 || beta.Versions[0].Devices[StateRolledBack] != 1 {
		t.Fatalf("beta %+v", beta)
	}
	if stable.Versions[0].Sequence != 2 || stable.Versions[0].Devices[StateFailed] != 1 ||
		stable.Versions[1].Devices[StateInstalled] != 2 || stable.Versions[1].Devices[StateDownloading] != 0 {
		t.Fatalf("stable versions %+v", stable.Versions)
	}
	if stable.BytesSeed != 100 || stable.BytesLAN != 1900 || stable.BytesPeer != 50 {
		t.Fatalf("stable bytes seed=%d lan=%d peer=%d", stable.BytesSeed, stable.BytesLAN, stable.BytesPeer)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	a := NewAggregator(nil)
	a.Add(Report{DeviceID: "d1", Channel: "stable", Sequence: 3, Version: "1.2.3", State: StateInstalled, BytesSeed: 7, Time: time.Now()})
	srv := httptest.NewServer(Handler(a, prometheus.NewRegistry(), nil))
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/api/status")
	var s Snapshot
	if code != 200 || json.Unmarshal([]byte(body), &s) != nil || s.Channels[0].Versions[0].Devices[StateInstalled] != 1 {
		t.Fatalf("/api/status %d %s", code, body)
	}
	code, body = get("/metrics")
	if code != 200 || !strings.Contains(body, `meshota_devices{channel="stable",sequence="3",state="installed",version="1.2.3"} 1`) ||
		!strings.Contains(body, `meshota_device_received_bytes{channel="stable",source="seed"} 7`) {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	if code, body = get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz %d %q", code, body)
	}
	if code, _ = get("/nope"); code != 404 {
		t.Fatalf("unknown path gave %d", code)
	}
}

func TestAlarmsFrozenAndEquivocation(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	a := NewAggregator(nil)
	a.Add(Report{DeviceID: "d1", Channel: "stable", Sequence: 4, Version: "1.0.0", State: StateInstalled, Frozen: true, Time: t0})
	a.Add(Report{DeviceID: "d2", Channel: "stable", Sequence: 4, Version: "1.0.0", State: StateInstalled, Time: t0})
	pair := [2]string{"aa", "bb"}
	raised := []struct {
		channel, device string
		digests         [2]string
		new             bool
	}{
		{"stable", "d2", pair, true},
		{"stable", "d1", pair, false},                 // same pair, another device
		{"stable", "d1", pair, false},                 // repeated report
		{"stable", "d2", [2]string{"aa", "cc"}, true}, // a third manifest
		{"beta", "d3", pair, true},                    // a channel without reports yet
	}
	for i, r := range raised {
		if got := a.AddEquivocation(r.channel, 4, r.digests, r.device, t0.Add(time.Duration(i)*time.Second)); got != r.new {
			t.Fatalf("alarm %d: new=%v, want %v", i, got, r.new)
		}
	}
	// A later report without the flag clears the frozen mark, but never
	// an equivocation alarm.
	a.Add(Report{DeviceID: "d2", Channel: "stable", Sequence: 5, Version: "1.1.0", State: StateInstalled, Time: t0.Add(time.Minute)})
	s := a.Snapshot()
	beta, stable := s.Channels[0], s.Channels[1]
	if len(stable.Frozen) != 1 || stable.Frozen[0] != "d1" {
		t.Fatalf("frozen %v, want [d1]", stable.Frozen)
	}
	if len(stable.Equivocations) != 2 || strings.Join(stable.Equivocations[0].Devices, ",") != "d1,d2" ||
		stable.Equivocations[1].Digests[1] != "cc" || !stable.Equivocations[0].First.Equal(t0) {
		t.Fatalf("stable alarms %+v", stable.Equivocations)
	}
	if len(beta.Equivocations) != 1 || len(beta.Versions) != 0 {
		t.Fatalf("beta %+v", beta)
	}
	srv := httptest.NewServer(Handler(a, prometheus.NewRegistry(), nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`meshota_frozen_devices{channel="stable"} 1`, `meshota_equivocations{channel="stable"} 2`, `meshota_equivocations{channel="beta"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, body)
		}
	}
}
