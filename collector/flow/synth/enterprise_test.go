package synth

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

// The enterprise traffic is seeded (the same seed, the same bytes and
// times; another seed, other traffic), in time order, at the configured
// rate, and holds every injected attack's packets.
func TestEnterpriseIsSeededAndInOrder(t *testing.T) {
	run := func(seed int64, attacks []Attack) (sum [32]byte, frames int, attackFrames map[AttackKind]int) {
		cfg := BenignEnterprise(seed, 8*time.Second)
		cfg.Attacks = attacks
		g := NewEnterprise(cfg)
		h := sha256.New()
		var last time.Time
		attackFrames = map[AttackKind]int{}
		for {
			out, ts, wire, ok := g.Next(nil)
			if !ok {
				break
			}
			if ts.Before(last) {
				t.Fatalf("frame %d at %s before %s", frames, ts, last)
			}
			if wire < len(out) || len(out) > cfg.Snaplen {
				t.Fatalf("frame %d: %d bytes captured of %d on the wire", frames, len(out), wire)
			}
			last = ts
			h.Write(out)
			h.Write([]byte(ts.String()))
			frames++
			for _, a := range attacks {
				// probes: from the attacker, or to the victim of a spoofed attack
				from := a.Attacker.IsValid() && bytes.Equal(out[26:30], a.Attacker.AsSlice())
				to := !a.Attacker.IsValid() && bytes.Equal(out[30:34], a.Victim.AsSlice())
				if from || to {
					attackFrames[a.Kind]++
				}
			}
		}
		copy(sum[:], h.Sum(nil))
		return sum, frames, attackFrames
	}
	a, n, _ := run(1, nil)
	b, _, _ := run(1, nil)
	c, _, _ := run(2, nil)
	if a != b || a == c {
		t.Errorf("seeding: same seed equal %v, other seed equal %v", a == b, a == c)
	}
	// 5 000 flows/s of 2 to 11 packets, plus the backup's 3 000 packets/s, for 8s.
	if n < 8*5000*4 || n > 8*5000*12 {
		t.Errorf("%d frames in 8s", n)
	}
	var attacks []Attack
	for i, a := range EnterpriseAttacks() {
		a.At, a.Count = time.Duration(i+1)*time.Second, 50
		attacks = append(attacks, a)
	}
	_, _, got := run(1, attacks)
	for _, a := range attacks {
		// 50 probes, plus a vertical scan's resets of open ports and
		// benign frames that reach a victim too.
		if got[a.Kind] < 50 || got[a.Kind] > 80 {
			t.Errorf("attack %d: %d frames, want 50 probes", a.Kind, got[a.Kind])
		}
	}
}
