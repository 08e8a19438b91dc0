package outbox

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to recovery as a segment file: Open must
// neither fail nor panic, and what it recovers must be a consistent queue
// that takes new events.
func FuzzOpen(f *testing.F) {
	seed := func(n int, damage func([]byte) []byte) {
		dir := f.TempDir()
		o, err := Open(dir, Options{})
		if err != nil {
			f.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			c := richChange(i)
			c.Expendable = i%3 == 0
			o.Append(c)
		}
		o.Ack(1)
		o.Close()
		data, err := os.ReadFile(filepath.Join(dir, segName(1)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(damage(data))
	}
	same := func(b []byte) []byte { return b }
	seed(0, same)
	seed(4, same)
	seed(4, func(b []byte) []byte { return b[:len(b)-9] })
	seed(5, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
	seed(3, func(b []byte) []byte { return append(b, make([]byte, 100)...) })
	f.Add([]byte("NAOB"))

	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer o.Close()
		p := o.Pending(0, 0)
		for i := 1; i < len(p); i++ {
			if p[i].Seq <= p[i-1].Seq {
				t.Fatalf("pending out of order: %d after %d", p[i].Seq, p[i-1].Seq)
			}
		}
		if o.Len() != len(p) {
			t.Fatalf("len %d, pending %d", o.Len(), len(p))
		}
		es, err := o.Append(richChange(0))
		if err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		if len(p) > 0 && es[0].Seq <= p[len(p)-1].Seq {
			t.Fatalf("new seq %d not after the recovered %d", es[0].Seq, p[len(p)-1].Seq)
		}
	})
}
