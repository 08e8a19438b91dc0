package synth

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func TestMixIsSeededAndHoldsItsIngredients(t *testing.T) {
	cfg := SmallMix()
	cfg.Packets, cfg.ScanPorts, cfg.FloodSYNs = 20000, 500, 2000
	run := func(seed int64) ([]byte, map[string]int) {
		c := cfg
		c.Seed = seed
		m := NewMix(c)
		var all []byte
		counts := map[string]int{}
		for {
			out, _, _, ok := m.Next(nil)
			if !ok {
				break
			}
			all = append(all, out...)
			counts["packets"]++
			et := binary.BigEndian.Uint16(out[12:])
			ip := out[14:]
			if et == 0x8100 {
				counts["vlan"]++
				et, ip = binary.BigEndian.Uint16(out[16:]), out[18:]
			}
			switch et {
			case 0x86dd:
				counts["ipv6"]++
			case 0x0800:
				src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
				flags := ip[20+13]
				switch {
				case src == Scanner && flags == 0x02:
					counts["scan syn"]++
				case dst == Scanner && flags == 0x14:
					counts["scan rst"]++
				case dst == FloodVictim && flags == 0x02:
					counts["flood syn"]++
				}
			}
		}
		return all, counts
	}
	a, counts := run(1)
	b, _ := run(1)
	c, _ := run(2)
	if !bytes.Equal(a, b) {
		t.Error("same seed, different packets")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same packets")
	}
	if counts["packets"] != cfg.Packets || counts["scan syn"] != cfg.ScanPorts || counts["scan rst"] != cfg.ScanPorts || counts["flood syn"] != cfg.FloodSYNs {
		t.Errorf("counts %v", counts)
	}
	if v := float64(counts["ipv6"]) / float64(cfg.Packets); v < 0.15 || v > 0.45 {
		t.Errorf("IPv6 share %.2f, want about %.2f", v, cfg.IPv6)
	}
	if v := float64(counts["vlan"]) / float64(cfg.Packets); v < 0.03 || v > 0.2 {
		t.Errorf("802.1Q share %.2f, want about %.2f", v, cfg.VLAN)
	}
}
