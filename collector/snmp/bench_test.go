package snmp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
)

// cpuNow is this process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssPeak is this process's peak resident set in MiB (VmHWM).
func rssPeak() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

type benchRow struct {
	name      string
	varbinds  int
	wall, cpu time.Duration
	extra     string
}

func (r benchRow) String() string {
	perVB := 0.0
	if r.varbinds > 0 {
		perVB = float64(r.cpu.Microseconds()) / float64(r.varbinds)
	}
	return fmt.Sprintf("| %-52s | %9d | %10.0f | %8.2f | %s", r.name, r.varbinds,
		float64(r.varbinds)/r.wall.Seconds(), perVB, r.extra)
}

func measure(name string, f func() int) benchRow {
	c0, t0 := cpuNow(), time.Now()
	n := f()
	return benchRow{name: name, varbinds: n, wall: time.Since(t0), cpu: cpuNow() - c0}
}

// netsnmpWalk runs snmpbulkwalk and returns its varbinds and CPU.
func netsnmpWalk(b *testing.B, addr string, oids ...string) (int, time.Duration) {
	bin, err := exec.LookPath("snmpbulkwalk")
	if err != nil {
		return 0, 0
	}
	total, cpu := 0, time.Duration(0)
	for _, oid := range oids {
		cmd := exec.Command(bin, "-v2c", "-c", "public", "-Cr25", "-On", "-Oq", addr, oid)
		cmd.Env = append(os.Environ(), "MIBS=")
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("snmpbulkwalk %s: %v", oid, err)
		}
		total += bytes.Count(out, []byte("\n"))
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return total, cpu
}

// BenchmarkSNMP prints the table of `make bench-snmp`: the collector against
// Debian's snmpd next to gosnmp's bare BulkWalk and net-snmp's snmpbulkwalk,
// then fleets of simulated devices (48 interfaces each) at a 60 s interval.
// Run it once: go test -run '^$' -bench BenchmarkSNMP -benchtime 1x.
// SNMP_BENCH_FLEET lists the fleet sizes (default 100,1000).
func BenchmarkSNMP(b *testing.B) {
	for range b.N {
		benchSNMPD(b)
		benchFleet(b)
	}
}

func benchSNMPD(b *testing.B) {
	v3 := usmCase{level: AuthPriv, auth: "SHA", priv: "AES"}
	dev := snmpdtest.Start(b, snmpdtest.Config{Users: usmUsers([]usmCase{v3})})
	const reps = 20
	fmt.Printf("\nDebian snmpd on loopback, %d walks each (agent CPU = this process; snmpbulkwalk = its own CPU)\n", reps)
	fmt.Println("| case                                                 |  varbinds | varbinds/s |  CPU µs/vb | note")
	fmt.Println("|------------------------------------------------------|-----------|------------|------------|-----")
	reg := prometheus.NewRegistry()
	m, _ := NewMetrics(reg)
	p := NewPoller(nil, WithMetrics(m))
	o := opts(dev.Addr(), "2c", "public", 2*time.Second, 1)
	o.MaxRepetitions = 25
	ours := measure("IF-MIB: netaiops Poll (system+if_mib, rates)", func() int {
		for range reps {
			if r := p.Poll(context.Background(), o); r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		return int(testutil.ToFloat64(m.varbinds.WithLabelValues("dev1")))
	})
	fmt.Println(ours)
	o3 := v3opts(dev.Addr(), v3.usm())
	o3.Target.Name, o3.MaxRepetitions = "dev3", 25
	oursV3 := measure("IF-MIB: netaiops Poll, v3 authPriv SHA/AES", func() int {
		for range reps {
			if r := p.Poll(context.Background(), o3); r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		return int(testutil.ToFloat64(m.varbinds.WithLabelValues("dev3")))
	})
	fmt.Println(oursV3)
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(dev.Port()), Community: "public", Version: gosnmp.Version2c,
		Timeout: 2 * time.Second, Retries: 1, MaxRepetitions: 25}
	if err := g.Connect(); err != nil {
		b.Fatal(err)
	}
	defer g.Conn.Close()
	bare := measure("IF-MIB: gosnmp BulkWalkAll ifTable+ifXTable", func() int {
		n := 0
		for range reps {
			for _, root := range []string{oidIfTable, oidIfXTable} {
				vbs, err := g.BulkWalkAll(root)
				if err != nil {
					b.Fatal(err)
				}
				n += len(vbs)
			}
		}
		return n
	})
	fmt.Println(bare)
	var nsVB int
	var nsCPU time.Duration
	t0 := time.Now()
	for range reps {
		n, c := netsnmpWalk(b, dev.Addr(), oidIfTable, oidIfXTable)
		nsVB, nsCPU = nsVB+n, nsCPU+c
	}
	fmt.Println(benchRow{name: "IF-MIB: net-snmp snmpbulkwalk -Cr25 (process per walk)", varbinds: nsVB, wall: time.Since(t0), cpu: nsCPU})
	s, err := p.dial(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	tree := measure("whole tree: netaiops walk of .1.3", func() int {
		n := 0
		for range reps {
			st, err := s.walk(context.Background(), ".1.3", func(*gosnmp.SnmpPDU) {})
			if err != nil {
				b.Fatal(err)
			}
			n += st.varbinds
		}
		return n
	})
	p.closeSession(s, o)
	fmt.Println(tree)
	bareTree := measure("whole tree: gosnmp BulkWalkAll .1.3", func() int {
		n := 0
		for range reps {
			vbs, err := g.BulkWalkAll(".1.3")
			if err != nil {
				b.Fatal(err)
			}
			n += len(vbs)
		}
		return n
	})
	fmt.Println(bareTree)
	nsVB, nsCPU, t0 = 0, 0, time.Now()
	for range reps {
		n, c := netsnmpWalk(b, dev.Addr(), ".1.3")
		nsVB, nsCPU = nsVB+n, nsCPU+c
	}
	fmt.Println(benchRow{name: "whole tree: net-snmp snmpbulkwalk -Cr25", varbinds: nsVB, wall: time.Since(t0), cpu: nsCPU})
	ratio := func(a, b benchRow) float64 {
		return (float64(a.cpu) / float64(a.varbinds)) / (float64(b.cpu) / float64(b.varbinds))
	}
	fmt.Printf("CPU per varbind, netaiops / gosnmp bare: IF-MIB Poll %.2fx, whole-tree walk %.2fx\n", ratio(ours, bare), ratio(tree, bareTree))
}

func mustPort(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// benchFleet polls N simulated devices (one simulator process, one socket)
// twice, 64 polls at a time, as the agent does each interval.
func benchFleet(b *testing.B) {
	sizes := []int{100, 1000}
	if env := os.Getenv("SNMP_BENCH_FLEET"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("SNMP_BENCH_FLEET: bad size %q", f)
			}
			sizes = append(sizes, n)
		}
	}
	bin := filepath.Join(b.TempDir(), "netaiops-snmpsim")
	build := exec.Command("go", "build", "-o", bin, "github.com/netaiops/netaiops/cmd/netaiops-snmpsim")
	if out, err := build.CombinedOutput(); err != nil {
		b.Skipf("cannot build the simulator: %v\n%s", err, out)
	}
	const interval, concurrency = 60 * time.Second, 64
	fmt.Printf("\nFleet: netaiops-snmpsim (separate process, one socket), 48 interfaces per device, %d polls in flight, interval %s\n", concurrency, interval)
	fmt.Println("| devices | varbinds/poll | round wall | agent CPU/round | CPU ms/device-poll | CPU µs/vb | CPU % of a core | gosnmp µs/vb | ratio | live heap MiB | RSS peak MiB | missed polls")
	fmt.Println("|---------|---------------|------------|-----------------|--------------------|-----------|-----------------|--------------|-------|---------------|--------------|-------------")
	for _, n := range sizes {
		addr := fmt.Sprintf("127.0.0.1:%d", snmpdtest.FreePort(b))
		sim := exec.Command(bin, "--devices", strconv.Itoa(n), "--interfaces", "48", "--listen", addr, "--stats-interval", "0", "--log-level", "error")
		if err := sim.Start(); err != nil {
			b.Fatal(err)
		}
		func() {
			defer func() { _ = sim.Process.Kill(); _ = sim.Wait() }()
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("sim-%05d", i+1)
			}
			reg := prometheus.NewRegistry()
			m, _ := NewMetrics(reg)
			p := NewPoller(nil, WithMetrics(m))
			opts := func(name string) Options {
				return Options{Target: collector.Target{Name: name, Address: addr, Version: "2c"}, Community: name,
					Timeout: 2 * time.Second, Retries: 1, MaxRepetitions: 25, MaxWalks: 1}
			}
			// Wait for the simulator.
			deadline := time.Now().Add(30 * time.Second)
			for p.Poll(context.Background(), opts(names[0])).Err != nil {
				if time.Now().After(deadline) {
					b.Fatalf("simulator with %d devices did not answer", n)
				}
				time.Sleep(100 * time.Millisecond)
			}
			var failed atomic.Int64
			round := func() {
				sem := make(chan struct{}, concurrency)
				var wg sync.WaitGroup
				for _, name := range names {
					sem <- struct{}{}
					wg.Go(func() {
						defer func() { <-sem }()
						if r := p.Poll(context.Background(), opts(name)); r.Err != nil {
							failed.Add(1)
						}
					})
				}
				wg.Wait()
			}
			round() // the first round fills the rate state
			vb0 := sumVarbinds(m)
			c0, t0 := cpuNow(), time.Now()
			failed.Store(0)
			round()
			wall, cpu := time.Since(t0), cpuNow()-c0
			vbs := sumVarbinds(m) - vb0
			// gosnmp bare on up to 100 of the same devices.
			k := min(n, 100)
			bc0 := cpuNow()
			bareVB := 0
			for _, name := range names[:k] {
				g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(mustPort(addr)), Community: name, Version: gosnmp.Version2c,
					Timeout: 2 * time.Second, Retries: 1, MaxRepetitions: 25}
				if err := g.Connect(); err != nil {
					b.Fatal(err)
				}
				for _, root := range []string{oidIfTable, oidIfXTable} {
					v, err := g.BulkWalkAll(root)
					if err != nil {
						b.Fatal(err)
					}
					bareVB += len(v)
				}
				_ = g.Conn.Close()
			}
			bareCPU := cpuNow() - bc0
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			runtime.KeepAlive(p)
			perVB := float64(cpu.Microseconds()) / float64(vbs)
			bare := float64(bareCPU.Microseconds()) / float64(bareVB)
			missed := failed.Load()
			if wall > interval {
				missed += int64(n) // the round overran: the next interval's polls would be skipped
			}
			fmt.Printf("| %7d | %13d | %10s | %15s | %18.2f | %9.2f | %15.1f | %12.2f | %5.2f | %13.0f | %12.0f | %d\n",
				n, vbs/n, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), float64(cpu.Microseconds())/1000/float64(n),
				perVB, 100*cpu.Seconds()/interval.Seconds(), bare, perVB/bare, float64(ms.HeapAlloc)/(1<<20), rssPeak(), missed)
		}()
	}
	fmt.Println("live heap: after a GC, with every device's rate state; RSS peak: the process's VmHWM (GOGC headroom included; GOMEMLIMIT bounds it).")
	fmt.Println("snmp_exporter, for reference (issue #3): about 12 µs of CPU per varbind end to end.")
}

func sumVarbinds(m *Metrics) int {
	mfs := make(chan prometheus.Metric, 1<<16)
	m.varbinds.Collect(mfs)
	close(mfs)
	total := 0.0
	for mt := range mfs {
		var d dto.Metric
		_ = mt.Write(&d)
		total += d.GetCounter().GetValue()
	}
	return int(total)
}
