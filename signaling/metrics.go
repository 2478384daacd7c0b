package signaling

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assist-video/assist/media"
)

// metrics are one server's Prometheus collectors, in a registry of its own (no globals, so
// tests can run many servers in one process).
type metrics struct {
	registry       *prometheus.Registry
	httpRequests   *prometheus.CounterVec
	sockets        prometheus.Gauge
	socketMessages *prometheus.CounterVec
	sessions       prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assist_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "assist_signaling_sockets", Help: "Open signaling WebSockets.",
		}),
		socketMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assist_signaling_messages_total", Help: "Signaling messages received, by type and result.",
		}, []string{"type", "result"}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "assist_sessions_created_total", Help: "Sessions created on this node.",
		}),
	}
	m.registry.MustRegister(m.httpRequests, m.sockets, m.socketMessages, m.sessions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) watchSFU(sfu *media.SFU) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assist_sfu_rooms", Help: "Rooms open on this node's SFU."},
			func() float64 { return float64(sfu.Rooms()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "assist_sfu_peers", Help: "Peer connections on this node's SFU."},
			func() float64 { return float64(sfu.Peers()) }),
	)
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}
