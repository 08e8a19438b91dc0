//go:build !linux

package anomaly

// adviseHuge does nothing where huge pages cannot be requested this way.
func adviseHuge([]slot) {}
