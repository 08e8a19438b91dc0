// Command ctlbench measures the controller under a fleet (make
// bench-controller): it starts the real netaiops-controller binary (SQLite
// file, gRPC on loopback), opens idle WatchIssues streams to measure their
// memory, then streams issue events from many simulated agents (each its own
// connection, a steady rate plus one burst, at most 4 batches in flight as
// the agent's uplink) while a few watchers read every change, and prints a
// table: ack latency p50/p99/max, the longest silence any agent stream saw
// against the heartbeat interval, the controller's CPU seconds and memory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

type options struct {
	controller     string
	controllerArgs string
	agents         int
	duration       time.Duration
	heartbeat      time.Duration
	every          time.Duration
	perBatch       int
	burst          int
	burstAt        time.Duration
	issuesPerAgent int
	idleWatchers   int
	watchers       int
	connectSpread  time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.controller, "controller", "bin/netaiops-controller", "netaiops-controller binary")
	flag.StringVar(&o.controllerArgs, "controller-args", "", "more flags for the controller, space-separated (e.g. \"--cpu-profile /tmp/ctl.prof\")")
	flag.IntVar(&o.agents, "agents", 1000, "simulated agents, one connection each")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long agents send at the steady rate")
	flag.DurationVar(&o.heartbeat, "heartbeat", 2*time.Second, "heartbeat interval of the agent streams")
	flag.DurationVar(&o.every, "every", time.Second, "each agent sends one batch this often")
	flag.IntVar(&o.perBatch, "per-batch", 2, "events in each steady batch")
	flag.IntVar(&o.burst, "burst", 50, "events each agent sends at once at -burst-at (a reconnect backlog)")
	flag.DurationVar(&o.burstAt, "burst-at", 10*time.Second, "when the burst starts")
	flag.IntVar(&o.issuesPerAgent, "issues-per-agent", 50, "distinct issues each agent cycles through")
	flag.IntVar(&o.idleWatchers, "idle-watchers", 10000, "idle WatchIssues streams opened to measure memory per watcher (0: skip)")
	flag.DurationVar(&o.connectSpread, "connect-spread", 5*time.Second, "agents connect at random times within this period")
	flag.IntVar(&o.watchers, "watchers", 2, "WatchIssues streams reading every change during the load")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ctlbench:", err)
		os.Exit(1)
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// cpuSeconds reads the user+system CPU time of a running process.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "ctlbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	addr, err := freePort()
	if err != nil {
		return err
	}
	maxWatchers := o.idleWatchers + o.watchers + 10
	cmd := exec.Command(o.controller, "--insecure", "--listen", addr, "--db", filepath.Join(dir, "controller.db"),
		"--heartbeat-interval", o.heartbeat.String(), "--log-level", "warn",
		"--max-watchers", strconv.Itoa(maxWatchers), "--max-watchers-per-caller", strconv.Itoa(maxWatchers))
	cmd.Args = append(cmd.Args, strings.Fields(o.controllerArgs)...)
	logf, err := os.Create(filepath.Join(dir, "controller.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", o.controller, err)
	}
	pid := cmd.Process.Pid
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("controller did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rows := [][2]string{}
	add := func(k, v string) { rows = append(rows, [2]string{k, v}) }

	// Idle watchers: memory per stream.
	if o.idleWatchers > 0 {
		before := rssKiB(pid)
		conns, err := idleWatchers(ctx, addr, o.idleWatchers)
		if err != nil {
			return err
		}
		time.Sleep(time.Second)
		after := rssKiB(pid)
		add("idle watchers", strconv.Itoa(o.idleWatchers))
		add("controller RSS per idle watcher", fmt.Sprintf("%.1f KiB (%d -> %d MiB)", float64(after-before)/float64(o.idleWatchers), before>>10, after>>10))
		for _, c := range conns {
			c.Close()
		}
	}

	// Watchers that read every change during the load.
	var wwg sync.WaitGroup
	watchCtx, watchCancel := context.WithCancel(ctx)
	defer watchCancel()
	wconn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer wconn.Close()
	type watchResult struct {
		changes int
		last    uint64
		err     error
	}
	wres := make([]watchResult, o.watchers)
	for i := range o.watchers {
		w, err := netaiopsv1.NewIssueServiceClient(wconn).WatchIssues(watchCtx, &netaiopsv1.WatchIssuesRequest{})
		if err != nil {
			return err
		}
		if _, err := w.Header(); err != nil {
			return err
		}
		wwg.Go(func() {
			for {
				m, err := w.Recv()
				if err != nil {
					if watchCtx.Err() == nil {
						wres[i].err = err
					}
					return
				}
				wres[i].changes++
				wres[i].last = m.GetPosition()
			}
		})
	}

	cpu0 := cpuSeconds(pid)
	start := time.Now()
	fleet := &fleet{o: o, start: start}
	var awg sync.WaitGroup
	errs := make(chan error, o.agents)
	for i := range o.agents {
		awg.Go(func() {
			// Agents connect over the first seconds, as a fleet does
			// after a controller restart (jittered reconnect backoff).
			time.Sleep(time.Duration(rand.Int64N(int64(o.connectSpread) + 1)))
			if err := fleet.agent(ctx, addr, i); err != nil {
				errs <- fmt.Errorf("agent %d: %w", i, err)
			}
		})
	}
	// Sample the controller's RSS during the load.
	var peakRSS atomic.Int64
	sampleDone := make(chan struct{})
	var swg sync.WaitGroup
	swg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if r := rssKiB(pid); r > peakRSS.Load() {
					peakRSS.Store(r)
				}
			case <-sampleDone:
				return
			}
		}
	})
	awg.Wait()
	close(sampleDone)
	swg.Wait()
	elapsed := time.Since(start)
	cpu := cpuSeconds(pid) - cpu0
	close(errs)
	var failed []string
	for err := range errs {
		failed = append(failed, err.Error())
	}
	// Let the watchers read the last changes.
	time.Sleep(2 * time.Second)
	watchCancel()
	wwg.Wait()

	lat := fleet.latencies()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	add("agents (one connection each)", strconv.Itoa(o.agents))
	add("load", fmt.Sprintf("%d events / %s per agent for %s, burst of %d events per agent at %s", o.perBatch, o.every, o.duration, o.burst, o.burstAt))
	add("events sent / acked", fmt.Sprintf("%d / %d", fleet.sent.Load(), fleet.acked.Load()))
	add("batches acked", strconv.Itoa(len(lat)))
	add("ack latency p50", pct(0.50).Round(time.Millisecond).String())
	add("ack latency p99 (target < 5s)", pct(0.99).Round(time.Millisecond).String())
	add("ack latency max", pct(1).Round(time.Millisecond).String())
	maxSilence, over := fleet.silences()
	add("longest silence of a stream", fmt.Sprintf("%s (heartbeat interval %s)", maxSilence.Round(time.Millisecond), o.heartbeat))
	add("streams silent longer than the interval", fmt.Sprintf("%d of %d", over, o.agents))
	add("streams ended by the controller", strconv.Itoa(len(failed)))
	for i, r := range wres {
		st := "kept up"
		if r.err != nil {
			st = "ended: " + r.err.Error()
		}
		add(fmt.Sprintf("watcher %d", i), fmt.Sprintf("%d changes, last position %d, %s", r.changes, r.last, st))
	}
	add("wall time of the load", elapsed.Round(time.Millisecond).String())
	add("controller CPU during the load", fmt.Sprintf("%.1f s (%.0f%% of one core; %.0f ms per 1000 events)", cpu, 100*cpu/elapsed.Seconds(), cpu*1e6/float64(max(1, fleet.acked.Load()))))
	add("controller peak RSS during the load", fmt.Sprintf("%d MiB", peakRSS.Load()>>10))

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		add("controller exit", err.Error())
	}
	w := 0
	for _, r := range rows {
		w = max(w, len(r[0]))
	}
	for _, r := range rows {
		fmt.Printf("%-*s  %s\n", w, r[0], r[1])
	}
	for i, f := range failed {
		if i == 5 {
			fmt.Printf("... %d more\n", len(failed)-5)
			break
		}
		fmt.Println("stream error:", f)
	}
	if pct(0.99) > 5*time.Second || over > 0 || len(failed) > 0 || fleet.acked.Load() != fleet.sent.Load() {
		fmt.Println("RESULT: target missed")
	} else {
		fmt.Println("RESULT: targets met")
	}
	return nil
}

// idleWatchers opens n watch streams over connections of 100 streams each.
func idleWatchers(ctx context.Context, addr string, n int) ([]*grpc.ClientConn, error) {
	var conns []*grpc.ClientConn
	for i := 0; i < n; i += 100 {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
		cl := netaiopsv1.NewIssueServiceClient(c)
		for j := i; j < min(n, i+100); j++ {
			w, err := cl.WatchIssues(ctx, &netaiopsv1.WatchIssuesRequest{})
			if err != nil {
				return conns, err
			}
			if _, err := w.Header(); err != nil {
				return conns, fmt.Errorf("idle watcher %d: %w", j, err)
			}
		}
	}
	return conns, nil
}

type fleet struct {
	o     options
	start time.Time

	sent, acked atomic.Int64
	mu          sync.Mutex
	lat         []time.Duration
	silence     []time.Duration
}

func (f *fleet) latencies() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lat)
}

func (f *fleet) silences() (longest time.Duration, over int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.silence {
		longest = max(longest, s)
		if s > f.o.heartbeat {
			over++
		}
	}
	return longest, over
}

const window = 4 // batches in flight, as uplink.DefaultMaxInFlight

// agent runs one simulated agent's stream.
func (f *fleet) agent(ctx context.Context, addr string, i int) error {
	o := f.o
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := netaiopsv1.NewControlServiceClient(conn).Connect(sctx)
	if err != nil {
		return err
	}
	id, logID := fmt.Sprintf("bench-%04d", i), fmt.Sprintf("log-%04d", i)
	if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Hello{Hello: &netaiopsv1.Hello{
		AgentId: id, LogId: logID, Version: "bench", Hostname: id}}}); err != nil {
		return err
	}
	m, err := stream.Recv()
	if err != nil || m.GetWelcome() == nil {
		return fmt.Errorf("welcome: %v %v", m, err)
	}

	type flight struct {
		last uint64
		sent time.Time
	}
	var (
		mu       sync.Mutex
		inflight []flight
		free     = make(chan struct{}, window)
		lats     []time.Duration
		longest  time.Duration
		recvErr  = make(chan error, 1)
		ackedSeq atomic.Uint64
	)
	for range window {
		free <- struct{}{}
	}
	var rwg sync.WaitGroup
	rwg.Go(func() {
		last := time.Now()
		for {
			m, err := stream.Recv()
			now := time.Now()
			if err != nil {
				if !errors.Is(err, io.EOF) && sctx.Err() == nil {
					recvErr <- err
				}
				return
			}
			longest = max(longest, now.Sub(last))
			last = now
			if a := m.GetAck(); a != nil {
				ackedSeq.Store(a.GetAckedSeq())
				mu.Lock()
				for len(inflight) > 0 && inflight[0].last <= a.GetAckedSeq() {
					lats = append(lats, now.Sub(inflight[0].sent))
					inflight = inflight[1:]
					free <- struct{}{}
				}
				mu.Unlock()
			}
		}
	})

	var sendMu sync.Mutex // heartbeats and batches share the stream
	seq := uint64(0)
	send := func(n int) error {
		select {
		case <-free:
		case err := <-recvErr:
			return err
		}
		evs := make([]*netaiopsv1.IssueEvent, n)
		now := time.Now()
		for k := range evs {
			seq++
			iss := int(seq) % o.issuesPerAgent
			state, typ := netaiopsv1.IssueState_ISSUE_STATE_OPEN, netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_UPDATED
			if seq%7 == 0 {
				state, typ = netaiopsv1.IssueState_ISSUE_STATE_RESOLVED, netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED
			}
			evs[k] = &netaiopsv1.IssueEvent{Seq: seq, Type: typ, Time: timestamppb.New(now), Issue: &netaiopsv1.Issue{
				Id: fmt.Sprintf("%s-%d", id, iss), Device: fmt.Sprintf("dev-%d", iss%10), Kind: "interface_down",
				Severity: netaiopsv1.Severity_SEVERITY_MAJOR, State: state, Summary: "interface ge-0/0/1 down",
				FirstSeen: timestamppb.New(f.start), LastSeen: timestamppb.New(now),
				Attributes: map[string]string{"ifName": "ge-0/0/1", "ifIndex": "1"}, Fingerprint: fmt.Sprintf("interface_down/%d", iss)}}
		}
		mu.Lock()
		inflight = append(inflight, flight{last: seq, sent: now})
		mu.Unlock()
		sendMu.Lock()
		err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Events{Events: &netaiopsv1.EventBatch{LogId: logID, Events: evs}}})
		sendMu.Unlock()
		f.sent.Add(int64(n))
		return err
	}
	hbDone := make(chan struct{})
	var hwg sync.WaitGroup
	hwg.Go(func() {
		t := time.NewTicker(o.heartbeat)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sendMu.Lock()
				stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Heartbeat{Heartbeat: &netaiopsv1.Heartbeat{Time: timestamppb.Now()}}})
				sendMu.Unlock()
			case <-hbDone:
				return
			}
		}
	})

	runErr := func() error {
		// Spread the agents' phases over one period.
		time.Sleep(time.Duration(rand.Int64N(int64(o.every))))
		t := time.NewTicker(o.every)
		defer t.Stop()
		burstDone := o.burst == 0
		end := f.start.Add(o.duration)
		for time.Now().Before(end) {
			if !burstDone && time.Since(f.start) >= o.burstAt {
				burstDone = true
				for left := o.burst; left > 0; left -= 500 {
					if err := send(min(left, 500)); err != nil {
						return err
					}
				}
			}
			select {
			case <-t.C:
			case err := <-recvErr:
				return err
			}
			if err := send(o.perBatch); err != nil {
				return err
			}
		}
		// Wait for the last acks.
		deadline := time.After(60 * time.Second)
		for ackedSeq.Load() < seq {
			select {
			case err := <-recvErr:
				return err
			case <-deadline:
				return fmt.Errorf("acked %d of %d after 60s", ackedSeq.Load(), seq)
			case <-time.After(20 * time.Millisecond):
			}
		}
		return nil
	}()
	close(hbDone)
	hwg.Wait()
	sendMu.Lock()
	stream.CloseSend()
	sendMu.Unlock()
	cancel()
	rwg.Wait()
	f.acked.Add(int64(ackedSeq.Load()))
	f.mu.Lock()
	f.lat = append(f.lat, lats...)
	f.silence = append(f.silence, longest)
	f.mu.Unlock()
	return runErr
}
