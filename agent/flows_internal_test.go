package agent

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/netaiops/netaiops/agent/config"
)

// A replay applies flows.bpf and snaplen as a live capture's kernel does.
// The counts are tcpdump's on the same file (tcpdump -r F 'filter' | wc -l).
func TestReplayFilter(t *testing.T) {
	const file = "../testdata/flow/mixed-small.pcap"
	for _, c := range []struct {
		filter string
		want   int
	}{{"", 1500}, {"host 198.18.100.100", 300}, {"not host 198.18.100.100", 1200}, {"tcp port 80", 426}} {
		src, err := openReplay(file, &config.Flows{BPF: c.filter, Snaplen: 64, ReplaySpeed: config.ReplayMax})
		if err != nil {
			t.Fatal(err)
		}
		n, longest := 0, 0
		for {
			data, _, err := src.ReadPacket(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
			longest = max(longest, len(data))
		}
		src.Close()
		if n != c.want {
			t.Errorf("filter %q: %d packets, want %d", c.filter, n, c.want)
		}
		if c.filter != "" && longest > 64 {
			t.Errorf("filter %q: a %d-byte frame past the snap length 64", c.filter, longest)
		}
	}
	if _, err := openReplay(file, &config.Flows{BPF: "tcp port", Snaplen: 64}); err == nil || !strings.Contains(err.Error(), "replay "+file) {
		t.Errorf("bad filter: %v", err)
	}
}
