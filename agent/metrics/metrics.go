// Package metrics exposes certagent's Prometheus metrics: the state of rotations and
// certificates, read at scrape time from the agent, and counters of Graph requests and drop
// folder files. It owns a private registry (with the Go and process collectors), so nothing
// else in the process can add to or break it.
package metrics

import (
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
)

// CertExpiry is one certificate credential of a target app, for the expiry gauge.
type CertExpiry struct {
	// Target is the target's name, the gauge's target label ("default" for the config's one
	// unnamed target).
	Target string
	// Thumbprint is the SHA-1 thumbprint, upper-case hex ("" when Graph did not tell).
	Thumbprint string
	// KeyID is Graph's keyId.
	KeyID    string
	NotAfter time.Time
}

// Config holds the callbacks that give the agent's state at scrape time. Every field is
// optional; a nil callback leaves its metric out. Callbacks are called from the scraping
// goroutine, must be safe for concurrent use and must not block.
type Config struct {
	// Version is the agent's version, for certagent_build_info.
	Version string
	// Rotations counts each target's rotations by state: target name → state → count. States
	// missing from a target's map are reported as 0.
	Rotations func() map[string]map[string]int
	// Certificates lists the target apps' certificate credentials as last read from Graph.
	Certificates func() []CertExpiry
	// CredentialNotAfter returns when the agent's own credential expires; the zero time
	// when it has none.
	CredentialNotAfter func() time.Time
	// LastSync returns when each target's app was last read from Graph successfully, by
	// target name; a target whose app never was is left out (or has the zero time).
	LastSync func() map[string]time.Time
}

// Metrics records and serves the agent's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	graph   *prometheus.CounterVec
	intake  *prometheus.CounterVec
	window  prometheus.Histogram
	handler http.Handler
}

// Metric names.
const (
	nameRotations     = "certagent_rotations"
	nameCertExpiry    = "certagent_certificate_expiry_timestamp_seconds"
	nameCredExpiry    = "certagent_agent_credential_expiry_timestamp_seconds"
	nameLastSync      = "certagent_last_sync_success_timestamp_seconds"
	nameGraphRequests = "certagent_graph_requests_total"
	nameIntakeFiles   = "certagent_intake_files_total"
	nameBuildInfo     = "certagent_build_info"
	nameReadToWrite   = "certagent_graph_read_to_write_seconds"
)

// Label names and values.
const (
	labelState      = "state"
	labelTarget     = "target"
	labelThumbprint = "thumbprint"
	labelKeyID      = "key_id"
	labelOp         = "op"
	labelOutcome    = "outcome"
	labelVerdict    = "verdict"
	labelCode       = "code"
	verdictAccepted = "accepted"
	verdictRejected = "rejected"
)

// New returns the metrics with a fresh registry.
func New(cfg Config) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		graph: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameGraphRequests,
			Help: "Requests to Microsoft Graph and the token endpoint, by operation and outcome.",
		}, []string{labelOp, labelOutcome}),
		intake: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameIntakeFiles,
			Help: "Certificates taken in (drop folder files and API submissions), by verdict and reason code.",
		}, []string{labelVerdict, labelCode}),
		window: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    nameReadToWrite,
			Help:    "Time between the answer of the read a keyCredentials write was built on and the write: the window in which an edit made outside the agent can be lost (Graph has no ETag on applications).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	// Every series people alert on exists from the start, at 0.
	m.intake.WithLabelValues(verdictAccepted, "")
	for _, c := range certs.VerdictCodes {
		m.intake.WithLabelValues(verdictRejected, string(c))
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.graph, m.intake, m.window, &stateCollector{cfg: cfg},
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

// GraphRequest counts one request to Graph or the token endpoint. It matches the graph
// client's Observe hook: op is "get", "replace", "token" and so on; outcome is "ok",
// "throttled", "server_error", "network", "denied" and so on.
func (m *Metrics) GraphRequest(op, outcome string) {
	m.graph.WithLabelValues(op, outcome).Inc()
}

// IntakeFile counts one certificate taken in. verdict is "accepted" or "rejected"; code is
// the reason code of a rejection ("" when accepted).
func (m *Metrics) IntakeFile(verdict, code string) {
	m.intake.WithLabelValues(verdict, code).Inc()
}

// ReadToWrite records the window between a read and the keyCredentials write built on it.
// It matches the rotation engine's OnWrite hook.
func (m *Metrics) ReadToWrite(d time.Duration) { m.window.Observe(d.Seconds()) }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// stateCollector reads the agent's state through the Config callbacks at scrape time.
type stateCollector struct {
	cfg Config
}

var (
	descRotations = prometheus.NewDesc(nameRotations,
		"Rotations by target and state.", []string{labelTarget, labelState}, nil)
	descCertExpiry = prometheus.NewDesc(nameCertExpiry,
		"When each certificate credential of each target app expires (endDateTime), in Unix seconds.",
		[]string{labelTarget, labelThumbprint, labelKeyID}, nil)
	descCredExpiry = prometheus.NewDesc(nameCredExpiry,
		"When the agent's own sign-in credential expires, in Unix seconds.", nil, nil)
	descLastSync = prometheus.NewDesc(nameLastSync,
		"When each target's app was last read from Graph successfully, in Unix seconds.", []string{labelTarget}, nil)
	descBuildInfo = prometheus.NewDesc(nameBuildInfo,
		"Always 1; the version label tells the agent's version.", []string{"version"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRotations
	ch <- descCertExpiry
	ch <- descCredExpiry
	ch <- descLastSync
	ch <- descBuildInfo
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	version := c.cfg.Version
	if version == "" {
		version = "unknown"
	}
	ch <- prometheus.MustNewConstMetric(descBuildInfo, prometheus.GaugeValue, 1, version)
	if f := c.cfg.Rotations; f != nil {
		byTarget := f()
		for _, target := range slices.Sorted(maps.Keys(byTarget)) {
			counts := byTarget[target]
			for _, st := range rotation.States {
				ch <- prometheus.MustNewConstMetric(descRotations, prometheus.GaugeValue, float64(counts[string(st)]), target, string(st))
			}
			var extra []string
			for k := range counts {
				if !rotation.State(k).Valid() {
					extra = append(extra, k)
				}
			}
			slices.Sort(extra)
			for _, k := range extra {
				ch <- prometheus.MustNewConstMetric(descRotations, prometheus.GaugeValue, float64(counts[k]), target, k)
			}
		}
	}
	if f := c.cfg.Certificates; f != nil {
		seen := map[[3]string]bool{}
		for _, ce := range f() {
			key := [3]string{ce.Target, ce.Thumbprint, ce.KeyID}
			if seen[key] || ce.NotAfter.IsZero() {
				continue // a registry refuses duplicate series
			}
			seen[key] = true
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, unix(ce.NotAfter), ce.Target, ce.Thumbprint, ce.KeyID)
		}
	}
	if f := c.cfg.CredentialNotAfter; f != nil {
		if t := f(); !t.IsZero() {
			ch <- prometheus.MustNewConstMetric(descCredExpiry, prometheus.GaugeValue, unix(t))
		}
	}
	if f := c.cfg.LastSync; f != nil {
		for target, t := range f() {
			if !t.IsZero() {
				ch <- prometheus.MustNewConstMetric(descLastSync, prometheus.GaugeValue, unix(t), target)
			}
		}
	}
}

// unix returns t in Unix seconds, with the fraction.
func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
