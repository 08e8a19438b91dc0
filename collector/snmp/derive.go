package snmp

import (
	"math"

	"github.com/netaiops/netaiops/collector"
)

// Metrics the poller derives from what the profiles read, under the names
// the detection rules use. Each is a Gauge in the poll of its inputs.
const (
	// MetricMemoryUtilization is used RAM in percent: UCD-SNMP's
	// (memTotalReal - memAvailReal - memBuffer - memCached) / memTotalReal,
	// else HOST-RESOURCES' hrStorageUsed / hrStorageSize of the hrStorageRam row.
	MetricMemoryUtilization = "memoryUtilization"
	// MetricCPUUtilization is busy CPU in percent: 100 - UCD-SNMP's ssCpuIdle.
	MetricCPUUtilization = "cpuUtilization"
	// MetricTemperature is an ENTITY-SENSOR-MIB celsius sensor's value in
	// degrees (entPhySensorValue scaled by entPhySensorScale and
	// entPhySensorPrecision), labelled like the sensor's row.
	MetricTemperature = "temperatureCelsius"
)

const (
	hrStorageRAM    = "1.3.6.1.2.1.25.2.1.2"
	sensorCelsius   = 8
	sensorUnitScale = 9 // entPhySensorScale units(9): 10^0
)

// derive appends the derived metrics of one poll's samples.
func derive(samples []collector.Sample, at collector.Sample) []collector.Sample {
	scalar := map[string]float64{}
	type sensor struct {
		labels                            collector.Labels
		typ, scale, precision, value, ok  float64
		hasType, hasValue, hasOK, hasPrec bool
		hasScale                          bool
	}
	sensors := map[string]*sensor{}
	var ram []collector.Sample
	used := map[string]float64{}
	for _, s := range samples {
		switch s.Metric {
		case "memTotalReal", "memAvailReal", "memBuffer", "memCached", "ssCpuIdle":
			scalar[s.Metric] = s.Value
		case "hrStorageSize":
			if s.Labels.Get("hrStorageType") == hrStorageRAM {
				ram = append(ram, s)
			}
		case "hrStorageUsed":
			if s.Labels.Get("hrStorageType") == hrStorageRAM {
				used[s.Labels.Get("hrStorageIndex")] = s.Value
			}
		case "entPhySensorType", "entPhySensorScale", "entPhySensorPrecision", "entPhySensorValue", "entPhySensorOperStatus":
			idx := s.Labels.Get("entPhysicalIndex")
			sn := sensors[idx]
			if sn == nil {
				sn = &sensor{labels: s.Labels}
				sensors[idx] = sn
			}
			switch s.Metric {
			case "entPhySensorType":
				sn.typ, sn.hasType = s.Value, true
			case "entPhySensorScale":
				sn.scale, sn.hasScale = s.Value, true
			case "entPhySensorPrecision":
				sn.precision, sn.hasPrec = s.Value, true
			case "entPhySensorValue":
				sn.value, sn.hasValue = s.Value, true
			case "entPhySensorOperStatus":
				sn.ok, sn.hasOK = s.Value, true
			}
		}
	}
	add := func(metric string, v float64, labels collector.Labels) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		s := at
		s.Metric, s.Value, s.Kind, s.Labels = metric, v, collector.Gauge, labels
		samples = append(samples, s)
	}
	if total, ok := scalar["memTotalReal"]; ok && total > 0 {
		if avail, ok := scalar["memAvailReal"]; ok {
			u := (total - avail - scalar["memBuffer"] - scalar["memCached"]) / total * 100
			add(MetricMemoryUtilization, math.Max(0, math.Min(100, u)), nil)
		}
	} else {
		for _, r := range ram {
			if u, ok := used[r.Labels.Get("hrStorageIndex")]; ok && r.Value > 0 {
				add(MetricMemoryUtilization, math.Max(0, math.Min(100, u/r.Value*100)), nil)
				break
			}
		}
	}
	if idle, ok := scalar["ssCpuIdle"]; ok && idle >= 0 && idle <= 100 {
		add(MetricCPUUtilization, 100-idle, nil)
	}
	for _, sn := range sortedSensors(sensors) {
		s := sensors[sn]
		if !s.hasType || s.typ != sensorCelsius || !s.hasValue || (s.hasOK && s.ok != 1) {
			continue
		}
		scale, prec := float64(sensorUnitScale), 0.0
		if s.hasScale {
			scale = s.scale
		}
		if s.hasPrec {
			prec = s.precision
		}
		add(MetricTemperature, s.value*math.Pow(10, 3*(scale-sensorUnitScale)-prec), s.labels)
	}
	return samples
}

func sortedSensors[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortOIDs(keys)
	return keys
}
