package trap

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers the receiver's counters with reg, read from
// Stats at each scrape:
//
//	netaiops_snmp_traps_received_total              datagrams read on the trap socket
//	netaiops_snmp_trap_events_total                 events delivered to the detection engine
//	netaiops_snmp_informs_acknowledged_total        informs answered
//	netaiops_snmp_traps_dropped_total{reason}       malformed, community, auth, pdu, queue_full
func RegisterMetrics(reg prometheus.Registerer, r *Receiver) error {
	if err := reg.Register(&collectorOf{r: r}); err != nil {
		return fmt.Errorf("register trap metrics: %w", err)
	}
	return nil
}

var (
	descReceived = prometheus.NewDesc("netaiops_snmp_traps_received_total", "Datagrams read on the SNMP trap socket.", nil, nil)
	descEvents   = prometheus.NewDesc("netaiops_snmp_trap_events_total", "Trap and inform events delivered to the detection engine.", nil, nil)
	descInforms  = prometheus.NewDesc("netaiops_snmp_informs_acknowledged_total", "SNMP informs acknowledged.", nil, nil)
	descDropped  = prometheus.NewDesc("netaiops_snmp_traps_dropped_total",
		"Trap datagrams dropped, by reason: malformed, community, auth, pdu (not a notification), queue_full.", []string{"reason"}, nil)
)

type collectorOf struct{ r *Receiver }

func (c *collectorOf) Describe(ch chan<- *prometheus.Desc) {
	ch <- descReceived
	ch <- descEvents
	ch <- descInforms
	ch <- descDropped
}

func (c *collectorOf) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(st.Received))
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(st.Events))
	ch <- prometheus.MustNewConstMetric(descInforms, prometheus.CounterValue, float64(st.Informs))
	for reason, n := range map[string]uint64{"malformed": st.DroppedMalformed, "community": st.DroppedCommunity,
		"auth": st.DroppedAuth, "pdu": st.DroppedPDU, "queue_full": st.DroppedQueueFull} {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), reason)
	}
}
