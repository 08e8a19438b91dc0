package snmp

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netaiops/netaiops/collector"
)

// Poll results, the result label of netaiops_snmp_polls_total.
const (
	ResultOK          = "ok"
	ResultTimeout     = "timeout"
	ResultAuthFailure = "auth_failure"
	ResultError       = "error"
)

// Metrics are the SNMP poller's self-metrics. Build them with NewMetrics
// from the registry the agent serves at /metrics, and hand them to
// NewPoller with WithMetrics. Labels are target names, never addresses.
//
//	netaiops_snmp_polls_total{target,result}          polls by result: ok, timeout, auth_failure, error
//	netaiops_snmp_poll_duration_seconds{target}       histogram of poll durations
//	netaiops_snmp_varbinds_total{target}              varbinds read by walks
//	netaiops_snmp_requests_total{target}              requests sent (Get, GetNext, GetBulk)
//	netaiops_snmp_varbinds_dropped_total{target}      varbinds dropped as undecodable (wrong type, bad text)
//	netaiops_snmp_walk_faults_total{target,fault}     walks ended early on a device bug: not_increasing, too_many_rows
//	netaiops_snmp_bulk_fallbacks_total{target}        walks that gave up GetBulk for GetNext
//	netaiops_snmp_polls_skipped_total{target}         polls not started because the previous one overran (the scheduler counts them: Skipped)
//	netaiops_snmp_replies_dropped_total{target,reason} datagrams dropped before decoding: malformed, foreign_source
type Metrics struct {
	polls      *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	varbinds   *prometheus.CounterVec
	requests   *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	faults     *prometheus.CounterVec
	fallbacks  *prometheus.CounterVec
	skipped    *prometheus.CounterVec
	badReply   *prometheus.CounterVec
	registered []prometheus.Collector
}

// NewMetrics registers the poller's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netaiops_snmp_polls_total",
			Help: "SNMP polls by target and result (ok, timeout, auth_failure, error)."}, []string{"target", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "netaiops_snmp_poll_duration_seconds",
			Help:    "Duration of SNMP polls by target.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"target"}),
		varbinds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netaiops_snmp_varbinds_total",
			Help: "Varbinds read by table walks, by target."}, []string{"target"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netaiops_snmp_requests_total",
			Help: "SNMP requests sent, by target."}, []string{"target"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netaiops_snmp_varbinds_dropped_total",
			Help: "Varbinds dropped as undecodable (wrong type, not a number), by target."}, []string{"target"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netaiops_snmp_walk_faults_total",
			Help: "Table walks ended early on a device bug (rows read before are kept), by target and fault."}, []string{"target", "fault"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netaiops_snmp_bulk_fallbacks_total",
			Help: "Walks that gave up GetBulk for GetNext because the device answered GetBulk badly, by target."}, []string{"target"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netaiops_snmp_polls_skipped_total",
			Help: "Polls not started because the previous poll of the target overran its interval."}, []string{"target"}),
		badReply: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netaiops_snmp_replies_dropped_total",
			Help: "Datagrams dropped before decoding: malformed (not well-formed BER), foreign_source (not from the device's address)."},
			[]string{"target", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.polls, m.duration, m.varbinds, m.requests, m.dropped, m.faults, m.fallbacks, m.skipped, m.badReply} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register snmp metrics: %w", err)
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

// Skipped counts n polls of target skipped by the scheduler.
func (m *Metrics) Skipped(target string, n int) {
	if m != nil && n > 0 {
		m.skipped.WithLabelValues(target).Add(float64(n))
	}
}

// Result classifies a poll's error for netaiops_snmp_polls_total.
func Result(err error) string {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, ErrTimeout):
		return ResultTimeout
	case errors.Is(err, ErrAuthFailure):
		return ResultAuthFailure
	}
	return ResultError
}

// observe records one poll.
func (m *Metrics) observe(p collector.Poll, st pollStats) {
	if m == nil {
		return
	}
	t := p.Target.Name
	m.polls.WithLabelValues(t, Result(p.Err)).Inc()
	m.duration.WithLabelValues(t).Observe(p.Duration.Seconds())
	m.varbinds.WithLabelValues(t).Add(float64(st.varbinds))
	m.requests.WithLabelValues(t).Add(float64(st.requests))
	if st.bad > 0 {
		m.dropped.WithLabelValues(t).Add(float64(st.bad))
	}
	for _, f := range st.faults {
		fault := "too_many_rows"
		if errors.Is(f.err, errNotIncreasing) {
			fault = "not_increasing"
		}
		m.faults.WithLabelValues(t, fault).Inc()
	}
	if st.fellBack {
		m.fallbacks.WithLabelValues(t).Inc()
	}
}

// badReplies counts datagrams a session dropped before decoding.
func (m *Metrics) badReplies(target string, malformed, foreign int) {
	if m == nil {
		return
	}
	if malformed > 0 {
		m.badReply.WithLabelValues(target, "malformed").Add(float64(malformed))
	}
	if foreign > 0 {
		m.badReply.WithLabelValues(target, "foreign_source").Add(float64(foreign))
	}
}
