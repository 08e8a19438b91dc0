package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The agent's own metrics, read from Stats at each scrape (one snapshot, so
// the values of one scrape agree). Per-target SNMP metrics come from
// collector/snmp, trap receiver metrics from collector/snmp/trap; labels
// never carry an address or an OID.
//
//	netaiops_agent_polls_total                 polls done
//	netaiops_agent_poll_errors_total           polls that failed
//	netaiops_agent_polls_skipped_total         polls not started: the previous one overran
//	netaiops_agent_targets                     targets configured now
//	netaiops_outbox_pending                    issue changes awaiting the controller's ack
//	netaiops_outbox_dropped_total              issue changes dropped because the outbox was full
//	netaiops_uplink_connected                  1 while a stream to the controller is open and welcomed
//	netaiops_uplink_attempts_total             streams tried
//	netaiops_uplink_sessions_total             streams welcomed
//	netaiops_uplink_events_sent_total          issue events sent (resends count again)
//	netaiops_uplink_commands_dropped_total     controller commands dropped: queue full
//	netaiops_uplink_config_pushes_total        configuration pushes answered
//	netaiops_uplink_events_undecodable_total   outbox entries skipped: cannot be decoded
//	netaiops_detect_changes_total              issue changes detected
//	netaiops_detect_trap_events_total          trap events fed to the engine
//	netaiops_detect_suppressed_total           issues opened as caused by another, not sent
//	netaiops_detect_released_total             suppressed issues that outlived their cause
//	netaiops_detect_attributed_total           sent issues later attributed to a root issue
//	netaiops_detect_deferred_total             failed polls a device_unreachable waited for its upstream
//	netaiops_detect_anomaly_dropped_total      samples not scored: the anomaly scorer was full
//	netaiops_detect_trap_devices               devices held for traps from unknown senders
//	netaiops_detect_trap_devices_refused_total traps from unknown senders ignored: too many such devices
//	netaiops_detect_trap_devices_forgotten_total devices of unknown trap senders forgotten when quiet
var (
	descPolls       = prometheus.NewDesc("netaiops_agent_polls_total", "Polls done.", nil, nil)
	descPollErrors  = prometheus.NewDesc("netaiops_agent_poll_errors_total", "Polls that failed (unreachable, timeout, auth).", nil, nil)
	descSkipped     = prometheus.NewDesc("netaiops_agent_polls_skipped_total", "Polls not started because the previous poll of the target overran its interval.", nil, nil)
	descTargets     = prometheus.NewDesc("netaiops_agent_targets", "Targets in the running configuration.", nil, nil)
	descPending     = prometheus.NewDesc("netaiops_outbox_pending", "Issue changes awaiting the controller's ack.", nil, nil)
	descDropped     = prometheus.NewDesc("netaiops_outbox_dropped_total", "Issue changes dropped because the outbox was full.", nil, nil)
	descConnected   = prometheus.NewDesc("netaiops_uplink_connected", "1 while a stream to the controller is open and welcomed, else 0.", nil, nil)
	descAttempts    = prometheus.NewDesc("netaiops_uplink_attempts_total", "Streams to the controller tried.", nil, nil)
	descSessions    = prometheus.NewDesc("netaiops_uplink_sessions_total", "Streams to the controller welcomed.", nil, nil)
	descSent        = prometheus.NewDesc("netaiops_uplink_events_sent_total", "Issue events sent to the controller (resends after a reconnect count again).", nil, nil)
	descCmdDropped  = prometheus.NewDesc("netaiops_uplink_commands_dropped_total", "Controller commands dropped because the command queue was full.", nil, nil)
	descPushes      = prometheus.NewDesc("netaiops_uplink_config_pushes_total", "Configuration pushes answered (ACK or NACK).", nil, nil)
	descChanges     = prometheus.NewDesc("netaiops_detect_changes_total", "Issue changes detected (opened, updated, resolved).", nil, nil)
	descTrapEvents  = prometheus.NewDesc("netaiops_detect_trap_events_total", "Trap events fed to the detection engine.", nil, nil)
	descSuppressed  = prometheus.NewDesc("netaiops_detect_suppressed_total", "Issues opened as caused by another issue and not sent.", nil, nil)
	descReleased    = prometheus.NewDesc("netaiops_detect_released_total", "Suppressed issues that outlived their cause and were sent as opened.", nil, nil)
	descAttributed  = prometheus.NewDesc("netaiops_detect_attributed_total", "Sent issues later marked as caused by a root issue.", nil, nil)
	descDeferred    = prometheus.NewDesc("netaiops_detect_deferred_total", "Failed polls an unexplained device_unreachable waited for its upstream.", nil, nil)
	descAnomalyDrop = prometheus.NewDesc("netaiops_detect_anomaly_dropped_total", "Samples not scored because the anomaly scorer was full.", nil, nil)
	descUndecodable = prometheus.NewDesc("netaiops_uplink_events_undecodable_total", "Outbox entries skipped because they could not be decoded (damaged or of an unknown format).", nil, nil)
	descTrapDevs    = prometheus.NewDesc("netaiops_detect_trap_devices", "Devices held by the engine for traps from unknown senders (not polled targets).", nil, nil)
	descTrapRefused = prometheus.NewDesc("netaiops_detect_trap_devices_refused_total", "Traps from unknown senders ignored because the engine held its maximum of such devices.", nil, nil)
	descTrapForgot  = prometheus.NewDesc("netaiops_detect_trap_devices_forgotten_total", "Devices of unknown trap senders forgotten after a quiet period, their issues resolved.", nil, nil)
)

// agentCollector exports the agent's Stats.
type agentCollector struct{ a *Agent }

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPolls, descPollErrors, descSkipped, descTargets, descPending, descDropped,
		descConnected, descAttempts, descSessions, descSent, descCmdDropped, descPushes, descChanges, descTrapEvents,
		descSuppressed, descReleased, descAttributed, descDeferred, descAnomalyDrop, descUndecodable, descTrapDevs,
		descTrapRefused, descTrapForgot} {
		ch <- d
	}
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.a.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descPolls, s.Polls)
	counter(descPollErrors, s.PollErrors)
	counter(descSkipped, s.Skipped)
	gauge(descTargets, float64(len(c.a.cur.Load().targets)))
	gauge(descPending, float64(s.Pending))
	counter(descDropped, s.Dropped)
	connected := 0.0
	if s.Uplink.Connected {
		connected = 1
	}
	gauge(descConnected, connected)
	counter(descAttempts, s.Uplink.Attempts)
	counter(descSessions, s.Uplink.Sessions)
	counter(descSent, s.Uplink.Events)
	counter(descCmdDropped, s.Uplink.DroppedCommands)
	counter(descPushes, s.Uplink.ConfigPushes)
	counter(descChanges, s.Changes)
	counter(descTrapEvents, s.TrapEvents)
	counter(descSuppressed, s.Detect.Suppressed)
	counter(descReleased, s.Detect.Released)
	counter(descAttributed, s.Detect.Attributed)
	counter(descDeferred, s.Detect.Deferred)
	counter(descAnomalyDrop, s.Detect.AnomalyDropped)
	counter(descUndecodable, s.Uplink.Undecodable)
	gauge(descTrapDevs, float64(s.Detect.TrapDevices))
	counter(descTrapRefused, s.Detect.TrapDevicesRefused)
	counter(descTrapForgot, s.Detect.TrapDevicesForgotten)
}

// listenMetrics binds the /metrics listener in New, so that MetricsAddr is
// known at once. "" and "off" disable it.
func listenMetrics(addr string) (net.Listener, error) {
	if addr == "" || addr == "off" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	return l, nil
}

// MetricsAddr returns the address /metrics is served on, or nil when off.
func (a *Agent) MetricsAddr() net.Addr {
	if a.metricsLn == nil {
		return nil
	}
	return a.metricsLn.Addr()
}

// serveMetrics serves the registry at /metrics until ctx ends, then shuts
// the server down, giving scrapes in flight a second.
func (a *Agent) serveMetrics(ctx context.Context) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{
		ErrorLog:            promLogger{a},
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { // owned here: serveMetrics waits for done below
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
	}()
	a.log.Info("serving metrics", "addr", a.metricsLn.Addr().String(), "path", "/metrics")
	if err := srv.Serve(a.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Error("metrics server stopped", "addr", a.metricsLn.Addr().String(), "err", err)
	}
	<-done
}

// promLogger passes promhttp's errors (a collector failing) to the agent's log.
type promLogger struct{ a *Agent }

func (l promLogger) Println(v ...any) { l.a.log.Warn("metrics: " + fmt.Sprint(v...)) }
