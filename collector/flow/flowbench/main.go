// Command flowbench times the flow pipeline on a capture file, from memory
// and end to end from the file, runs softflowd and nfpcapd (when installed)
// on the same file, and prints a table of packets per CPU-second. make
// bench-flow runs it on the output of netaiops-pcapgen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netaiops/netaiops/collector/flow"
)

func main() {
	path := flag.String("pcap", "", "capture file (required)")
	runs := flag.Int("runs", 3, "runs per row; the median is printed")
	maxFlows := flag.Int("max-flows", 2_000_000, "flow table limit")
	idle := flag.Duration("idle", 60*time.Second, "idle timeout")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*path, *runs, *maxFlows, *idle, log); err != nil {
		log.Error("flowbench failed", "err", err)
		os.Exit(1)
	}
}

type row struct {
	name     string
	packets  uint64
	flows    uint64
	wall     time.Duration
	cpu      time.Duration
	allocs   float64 // per packet, -1 unknown
	note     string
	skipped  string
	baseline bool
}

func (r row) mppsPerCPU() float64 {
	if r.cpu <= 0 {
		return 0
	}
	return float64(r.packets) / r.cpu.Seconds() / 1e6
}

type capture struct {
	link layers.LinkType
	data []byte
	off  []uint32 // frame i is data[off[i]:off[i+1]]
	ts   []int64
	wire []uint32
}

func load(path string) (*capture, error) {
	src, err := flow.OpenFile(path, flow.FileOptions{})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	c := &capture{link: src.LinkType(), off: []uint32{0}}
	for {
		d, ci, err := src.ReadPacket(context.Background())
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		if err != nil {
			return nil, err
		}
		c.data = append(c.data, d...)
		c.off = append(c.off, uint32(len(c.data)))
		c.ts = append(c.ts, ci.Timestamp.UnixNano())
		c.wire = append(c.wire, uint32(max(ci.Length, len(d))))
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// measure runs fn runs times and keeps the run with the median CPU time.
func measure(runs int, fn func() row) row {
	var rs []row
	for range runs {
		runtime.GC()
		m0, c0, w0 := mallocs(), cpuTime(), time.Now()
		r := fn()
		r.wall, r.cpu = time.Since(w0), cpuTime()-c0
		r.allocs = float64(mallocs()-m0) / float64(max(r.packets, 1))
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b row) int { return int(a.cpu - b.cpu) })
	return rs[len(rs)/2]
}

func run(path string, runs, maxFlows int, idle time.Duration, log *slog.Logger) error {
	if path == "" {
		return fmt.Errorf("-pcap is required")
	}
	c, err := load(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	n := uint64(len(c.ts))
	tcfg := flow.TableConfig{MaxFlows: maxFlows, IdleTimeout: idle}
	var rows []row

	var stateBytes float64
	rows = append(rows, measure(runs, func() row {
		d := flow.NewDecoder(c.link)
		t := flow.NewTable(tcfg)
		var m flow.Meta
		for i := range c.ts {
			if d.Decode(c.data[c.off[i]:c.off[i+1]], &m) {
				t.Update(&m, c.ts[i], int(c.wire[i]))
			}
		}
		st := t.Stats()
		stateBytes = t.StateBytesPerFlow()
		return row{name: "netaiops from memory: decode+key+table", packets: n, flows: st.Created,
			note: fmt.Sprintf("evicted %d, %d flows left at the end", st.Evicted, t.Len())}
	}))
	rows = append(rows, measure(runs, func() row {
		mt := flow.NewMeter(flow.MeterConfig{Name: "bench", Table: tcfg}, c.link, log, nil)
		for i := range c.ts {
			mt.Packet(c.data[c.off[i]:c.off[i+1]], c.ts[i], int(c.wire[i]))
		}
		mt.Finish()
		return row{name: "netaiops from memory: + features", packets: n, flows: mt.Table().Stats().Created}
	}))
	rows = append(rows, measure(runs, func() row {
		const name = "netaiops from file: read+decode+table"
		src, err := flow.OpenFile(path, flow.FileOptions{})
		if err != nil {
			return row{name: name, skipped: err.Error()}
		}
		defer src.Close()
		d := flow.NewDecoder(src.LinkType())
		t := flow.NewTable(tcfg)
		var m flow.Meta
		for {
			data, ci, err := src.ReadPacket(context.Background())
			if err != nil {
				if !errors.Is(err, io.EOF) {
					return row{name: name, skipped: err.Error()}
				}
				break
			}
			if d.Decode(data, &m) {
				t.Update(&m, ci.Timestamp.UnixNano(), ci.Length)
			}
		}
		return row{name: name, packets: n, flows: t.Stats().Created}
	}))
	rows = append(rows, measure(runs, func() row {
		src, err := flow.OpenFile(path, flow.FileOptions{})
		if err != nil {
			return row{name: "netaiops end to end from file", skipped: err.Error()}
		}
		defer src.Close()
		mt := flow.NewMeter(flow.MeterConfig{Name: "bench", Table: tcfg}, src.LinkType(), slog.New(slog.DiscardHandler), nil)
		if err := mt.Run(context.Background(), src); err != nil {
			return row{name: "netaiops end to end from file", skipped: err.Error()}
		}
		return row{name: "netaiops end to end from file (full meter)", packets: n, flows: mt.Table().Stats().Created}
	}))
	sf := external(runs, "softflowd", n, func(port int, _ string) []string {
		return []string{"softflowd", "-r", path, "-n", fmt.Sprintf("127.0.0.1:%d", port), "-m", "2000000", "-6", "-d"}
	})
	sf.baseline = true
	rows = append(rows, sf)
	rows = append(rows, external(runs, "nfpcapd", n, func(_ int, dir string) []string {
		return []string{"nfpcapd", "-r", path, "-w", dir}
	}))

	fmt.Printf("\nflow pipeline on %s: %d packets, one core, median of %d runs; idle timeout %v, max flows %d\n",
		path, n, runs, idle, maxFlows)
	fmt.Printf("flow state: %d bytes per entry, %.1f bytes per tracked flow with index and wheel at the limit\n\n",
		flow.EntryBytes, stateBytes)
	fmt.Printf("%-42s %9s %8s %8s %11s %11s %8s  %s\n", "pipeline", "flows", "wall s", "cpu s", "Mpps/cpu-s", "allocs/pkt", "vs sfd", "note")
	for _, r := range rows {
		if r.skipped != "" {
			fmt.Printf("%-42s skipped: %s\n", r.name, r.skipped)
			continue
		}
		ratio := "-"
		if sf.skipped == "" && sf.mppsPerCPU() > 0 {
			ratio = fmt.Sprintf("%.2fx", r.mppsPerCPU()/sf.mppsPerCPU())
		}
		allocs := "-"
		if r.allocs >= 0 {
			allocs = fmt.Sprintf("%.4f", r.allocs)
		}
		flows := "-"
		if r.flows > 0 {
			flows = fmt.Sprint(r.flows)
		}
		fmt.Printf("%-42s %9s %8.3f %8.3f %11.2f %11s %8s  %s\n", r.name, flows, r.wall.Seconds(), r.cpu.Seconds(),
			r.mppsPerCPU(), allocs, ratio, r.note)
	}
	fmt.Println()
	return nil
}

// external runs a flow exporter on the file, timing its CPU through
// rusage; NetFlow goes to a local UDP socket that only counts datagrams.
func external(runs int, name string, packets uint64, args func(port int, dir string) []string) row {
	r := row{name: name + " (same file)", packets: packets, allocs: -1}
	if _, err := exec.LookPath(name); err != nil {
		r.skipped = name + " not installed (apt-get install " + map[string]string{"softflowd": "softflowd", "nfpcapd": "nfdump"}[name] + ")"
		return r
	}
	var cpus, walls []time.Duration
	for range runs {
		ln, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			r.skipped = err.Error()
			return r
		}
		done := make(chan int)
		go func() {
			buf := make([]byte, 65536)
			k := 0
			for {
				if _, _, err := ln.ReadFrom(buf); err != nil {
					done <- k
					return
				}
				k++
			}
		}()
		dir, err := os.MkdirTemp("", "flowbench-")
		if err != nil {
			ln.Close()
			r.skipped = err.Error()
			return r
		}
		a := args(ln.LocalAddr().(*net.UDPAddr).Port, dir)
		cmd := exec.Command(a[0], a[1:]...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		w0 := time.Now()
		err = cmd.Run()
		wall := time.Since(w0)
		time.Sleep(50 * time.Millisecond) // let the last datagrams land
		ln.Close()
		datagrams := <-done
		os.RemoveAll(dir)
		if err != nil {
			r.skipped = fmt.Sprintf("%s: %v: %s", strings.Join(a, " "), err, strings.TrimSpace(out.String()))
			return r
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpus = append(cpus, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()))
		walls = append(walls, wall)
		if datagrams > 0 {
			r.note = fmt.Sprintf("%d NetFlow datagrams received", datagrams)
		}
	}
	slices.Sort(cpus)
	slices.Sort(walls)
	r.cpu, r.wall = cpus[len(cpus)/2], walls[len(walls)/2]
	return r
}
