// Package anomaly scores numeric series for anomalies, one sample at a time.
package anomaly
