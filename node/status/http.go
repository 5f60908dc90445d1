package status

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /api/status, /metrics and /healthz. healthy reports
// whether the node is serving (nil means always).
func Handler(a *Aggregator, reg *prometheus.Registry, healthy func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Snapshot())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if healthy != nil {
			if err := healthy(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	reg.MustRegister(collector{a})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// collector exports the aggregator's snapshot at scrape time, so metrics
// and /api/status never disagree.
type collector struct{ a *Aggregator }

var (
	devicesDesc = prometheus.NewDesc("meshota_devices", "Devices by channel, release and state, from their latest status report.",
		[]string{"channel", "sequence", "version", "state"}, nil)
	deviceBytesDesc = prometheus.NewDesc("meshota_device_received_bytes", "Bytes devices report having received, by channel and source.",
		[]string{"channel", "source"}, nil)
	servedDesc = prometheus.NewDesc("meshota_seed_served_bytes_total", "Bytes of blocks this seed served.", nil, nil)
	frozenDesc = prometheus.NewDesc("meshota_frozen_devices", "Devices whose accepted manifest expired with no newer one, by channel.",
		[]string{"channel"}, nil)
	equivocationDesc = prometheus.NewDesc("meshota_equivocations", "Pairs of different manifests with one sequence that devices reported, by channel (alarm when above 0).",
		[]string{"channel"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- devicesDesc
	ch <- deviceBytesDesc
	ch <- servedDesc
	ch <- frozenDesc
	ch <- equivocationDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.a.Snapshot()
	for _, cs := range s.Channels {
		for _, v := range cs.Versions {
			for state, n := range v.Devices {
				ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, float64(n),
					cs.Channel, uitoa(v.Sequence), v.Version, state)
			}
		}
		ch <- prometheus.MustNewConstMetric(frozenDesc, prometheus.GaugeValue, float64(len(cs.Frozen)), cs.Channel)
		ch <- prometheus.MustNewConstMetric(equivocationDesc, prometheus.GaugeValue, float64(len(cs.Equivocations)), cs.Channel)
		for src, n := range map[string]uint64{"seed": cs.BytesSeed, "lan": cs.BytesLAN, "peer": cs.BytesPeer} {
			ch <- prometheus.MustNewConstMetric(deviceBytesDesc, prometheus.CounterValue, float64(n), cs.Channel, src)
		}
	}
	ch <- prometheus.MustNewConstMetric(servedDesc, prometheus.CounterValue, float64(s.SeedBytesServed))
}
