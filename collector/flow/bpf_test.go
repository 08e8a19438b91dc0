package flow

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/net/bpf"

	"github.com/netaiops/netaiops/collector/flow/synth"
)

var filterFrames = func() map[string][]byte {
	c := netip.MustParseAddr("198.19.0.1")
	arp := frame(synth.Frame{Src: v4a, Dst: v4b, Proto: 6})[:12]
	arp = append(arp, 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	return map[string][]byte{
		"v4 tcp":        frame(synth.Frame{Src: v4a, Dst: v4b, Proto: 6, SrcPort: 40000, DstPort: 80, TCPFlags: 2}),
		"v4 tcp opts":   frame(synth.Frame{Src: c, Dst: v4b, Proto: 6, SrcPort: 22, DstPort: 1500, IPv4Options: 8}),
		"v4 udp":        frame(synth.Frame{Src: v4b, Dst: c, Proto: 17, SrcPort: 5353, DstPort: 53}),
		"v4 icmp":       frame(synth.Frame{Src: v4a, Dst: c, Proto: 1, ICMPType: 8}),
		"v4 gre":        frame(synth.Frame{Src: v4a, Dst: v4b, Proto: 47, Payload: 8}),
		"v4 frag first": frame(synth.Frame{Src: v4a, Dst: v4b, Proto: 17, SrcPort: 53, DstPort: 999, MoreFragments: true, Payload: 20}),
		"v4 frag later": frame(synth.Frame{Src: v4a, Dst: v4b, Proto: 17, FragOffset: 3, Payload: 20}),
		"v6 tcp":        frame(synth.Frame{Src: v6a, Dst: v6b, Proto: 6, SrcPort: 1234, DstPort: 443}),
		"v6 udp":        frame(synth.Frame{Src: v6b, Dst: v6a, Proto: 17, SrcPort: 1500, DstPort: 53}),
		"v6 icmp6":      frame(synth.Frame{Src: v6a, Dst: netip.MustParseAddr("fe80::1"), Proto: 58, ICMPType: 128}),
		"vlan v4 tcp":   frame(synth.Frame{VLANs: []uint16{5}, Src: v4a, Dst: v4b, Proto: 6, SrcPort: 1, DstPort: 80}),
		"arp":           arp,
		"v4 tcp synack mac": func() []byte {
			b := frame(synth.Frame{Src: v4b, Dst: v4a, Proto: 6, SrcPort: 80, DstPort: 40000, TCPFlags: 0x12, Payload: 200})
			copy(b[0:12], []byte{0x02, 0, 0x5e, 0x10, 0, 0x07, 0x02, 0, 0x5e, 0x10, 0, 0x08})
			return b
		}(),
	}
}()

var filterExprs = []string{
	"", "tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp", "ip proto 47", "ip6 proto 17",
	"port 80", "tcp port 80", "udp dst port 53", "src port 40000", "dst port 999", "port 53",
	"portrange 1000-2000", "tcp src portrange 1-1024",
	"host 198.18.0.1", "src host 198.18.0.2", "dst host fd00::2", "host fd00::1",
	"net 198.18.0.0/15", "dst net 198.19.0.0/16", "src net fd00::/8", "net fe80::/10",
	"not tcp", "tcp and not port 22", "(udp or icmp) and host 198.18.0.2", "!ip && !ip6",
	"tcp dst portrange 1-1024 or icmp", "udp or (tcp and dst port 443)",
	"greater 100", "less 80", "greater 60 and less 100",
	"ether src 02:00:00:00:00:01", "ether dst 02:00:5e:10:00:07", "ether host 02:00:5e:10:00:08",
	"ether src host 02:00:5e:10:00:08", "ether proto 0x86dd", "ether proto 2054",
	"tcp[13] & 2 != 0", "tcp[13]&0x12=0x12", "tcp[13] & 0x12 == 2", "udp[0:2] = 53", "udp[2:2] == 53",
	"ip[0] & 0xf != 5", "ip[9] = 47", "ip6[6] = 17", "icmp[0] = 8", "tcp[0:2] > 1024", "tcp[0:2] <= 22",
	"ether[12:2] = 0x8100", "ip[6:2] & 0x1fff != 0", "tcp[12] | 0x0f >= 0x5f", "ip[16:4] < 3323068418",
	"tcp[13] & 2 != 0 and not tcp[13] & 16 != 0", "tcp[2:2] >= 1000 or udp[0:2] < 1000",
}

func runFilter(t *testing.T, raw []bpf.RawInstruction, data []byte) bool {
	t.Helper()
	prog := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		prog[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	n, err := vm.Run(data)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return n > 0
}

func TestCompileFilterHandChecked(t *testing.T) {
	want := map[string][]string{ // expression -> frames it accepts
		"tcp port 80":                 {"v4 tcp", "v4 tcp synack mac"},
		"udp dst port 53":             {"v4 udp", "v6 udp"},
		"port 53":                     {"v4 udp", "v6 udp", "v4 frag first"},
		"icmp6":                       {"v6 icmp6"},
		"src host 198.18.0.2":         {"v4 udp", "v4 tcp synack mac"},
		"dst host fd00::2":            {"v6 tcp"},
		"net 198.18.0.0/15":           {"v4 tcp", "v4 tcp opts", "v4 udp", "v4 icmp", "v4 gre", "v4 frag first", "v4 frag later", "v4 tcp synack mac"},
		"tcp and not port 22":         {"v4 tcp", "v6 tcp", "v4 tcp synack mac"},
		"tcp[13] & 2 != 0":            {"v4 tcp", "v4 tcp synack mac"},
		"tcp[13] & 0x12 == 2":         {"v4 tcp"},
		"ether src 02:00:5e:10:00:08": {"v4 tcp synack mac"},
		"tcp src portrange 1-1024":    {"v4 tcp opts", "v4 tcp synack mac"},
	}
	for expr, accepted := range want {
		raw, err := CompileFilter(expr, 128)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range filterFrames {
			exp := false
			for _, a := range accepted {
				exp = exp || a == name
			}
			if got := runFilter(t, raw, data); got != exp {
				t.Errorf("%q on %s = %v, want %v", expr, name, got, exp)
			}
		}
	}
}

// TestCompileFilterMatchesTcpdump runs our program and tcpdump's (libpcap's)
// for each expression on every frame in the BPF VM and wants equal verdicts.
func TestCompileFilterMatchesTcpdump(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump not installed (apt-get install tcpdump): skipping the cross-check with libpcap")
	}
	// tcpdump needs a link type: give it an empty Ethernet pcap.
	pcapPath := filepath.Join(t.TempDir(), "empty.pcap")
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(262144, layers.LinkTypeEthernet)
	os.WriteFile(pcapPath, buf.Bytes(), 0o644)
	for _, expr := range filterExprs {
		args := []string{"-ddd", "-r", pcapPath}
		if expr != "" {
			args = append(args, expr)
		}
		out, err := exec.Command(tcpdump, args...).Output()
		if err != nil {
			t.Fatalf("tcpdump %q: %v", expr, err)
		}
		var ref []bpf.RawInstruction
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Scan() // count
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 4 {
				continue
			}
			v := make([]uint64, 4)
			for i := range f {
				v[i], _ = strconv.ParseUint(f[i], 10, 32)
			}
			ref = append(ref, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
		}
		ours, err := CompileFilter(expr, 262144)
		if err != nil {
			t.Fatalf("CompileFilter(%q): %v", expr, err)
		}
		for name, data := range filterFrames {
			if expr == "host 198.18.0.1" || expr == "src host 198.18.0.2" || strings.Contains(expr, "and host") {
				if name == "arp" {
					continue // libpcap's host also matches ARP sender/target: ours is IP only
				}
			}
			if got, want := runFilter(t, ours, data), runFilter(t, ref, data); got != want {
				t.Errorf("%q on %s: ours %v, tcpdump %v", expr, name, got, want)
			}
		}
	}
}

func TestCompileFilterErrors(t *testing.T) {
	for expr, want := range map[string]string{
		"vlan 5":            `"vlan" is not supported`,
		"tcp[13":            "missing ]",
		"tcp[1:3] = 0":      "size must be 1, 2 or 4",
		"tcp[13] & 2":       "want a comparison",
		"arp[0] = 1":        `want ether, ip, ip6, tcp, udp or icmp`,
		"ether 02:00":       `ether "02:00": want src, dst, host or proto`,
		"ether src 1.2.3.4": "ether address",
		"ether proto 100":   "802.3 lengths are not supported",
		"greater big":       "want a number",
		"tcp and":           "expression ends early",
		"(tcp":              "missing )",
		"port 70000":        "want a number from 0 to 65535",
		"host 1.2.3.0/24":   "use net for a prefix",
		"host nothere":      `host "nothere"`,
		"portrange 9-1":     "want LOW-HIGH",
		"tcp host 1.2.3.4":  `unexpected "host"`,
		"frobnicate":        `unknown primitive "frobnicate"`,
		"tcp udp":           `unexpected "udp"`,
	} {
		_, err := CompileFilter(expr, 0)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CompileFilter(%q) error %v, want it to contain %q", expr, err, want)
		}
	}
}
