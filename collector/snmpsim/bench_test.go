package snmpsim

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// bulkIfXRequest is a GetBulk of 25 ifXTable rows over four columns
// (ifName, ifHCInOctets, ifHCOutOctets, ifHighSpeed): 100 varbinds, what a
// poller asks a 24-port switch every interval.
func bulkIfXRequest(b *testing.B, community string) []byte {
	b.Helper()
	enc := &gosnmp.GoSNMP{Version: gosnmp.Version2c, Community: community}
	req, err := enc.SnmpEncodePacket(gosnmp.GetBulkRequest, []gosnmp.SnmpPDU{
		{Name: ".1.3.6.1.2.1.31.1.1.1.1", Type: gosnmp.Null},
		{Name: ".1.3.6.1.2.1.31.1.1.1.6", Type: gosnmp.Null},
		{Name: ".1.3.6.1.2.1.31.1.1.1.10", Type: gosnmp.Null},
		{Name: ".1.3.6.1.2.1.31.1.1.1.15", Type: gosnmp.Null},
	}, 0, 25)
	if err != nil {
		b.Fatal(err)
	}
	return req
}

func loadServer(b *testing.B) *Server {
	sc, err := GenerateScenario(1000, 25)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := NewServer(sc, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// BenchmarkHandleGetBulkIfXTable measures the request path alone (decode,
// lookup, values, encode) without the socket.
func BenchmarkHandleGetBulkIfXTable(b *testing.B) {
	srv := loadServer(b)
	req := bulkIfXRequest(b, "sim-00500")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if srv.HandlePacket(req) == nil {
				b.Error("no response")
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkServeGetBulkIfXTable measures round trips over loopback UDP:
// parallel clients, each with its own socket, one request in flight each.
func BenchmarkServeGetBulkIfXTable(b *testing.B) {
	srv := loadServer(b)
	addr := serve(b, srv)
	req := bulkIfXRequest(b, "sim-00500")
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.DialUDP("udp", nil, addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		buf := make([]byte, 65535)
		for pb.Next() {
			if _, err := conn.Write(req); err != nil {
				b.Error(err)
				return
			}
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			if err != nil || n < 100 {
				b.Errorf("read: %d bytes, %v", n, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkServePollCycle is one agent-style poll per op against a fleet of
// 10 000 generated 24-port devices: a Get of sysUpTime and sysName, then a
// gosnmp BulkWalk (max-repetitions 25) of six ifTable/ifXTable columns.
// Ten gosnmp clients poll in parallel over loopback.
func BenchmarkServePollCycle(b *testing.B) {
	sc, err := GenerateScenario(10000, 24)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := NewServer(sc, Options{})
	if err != nil {
		b.Fatal(err)
	}
	addr := serve(b, srv)
	cols := []string{".1.3.6.1.2.1.2.2.1.2", ".1.3.6.1.2.1.2.2.1.7", ".1.3.6.1.2.1.2.2.1.8",
		".1.3.6.1.2.1.31.1.1.1.1", ".1.3.6.1.2.1.31.1.1.1.6", ".1.3.6.1.2.1.31.1.1.1.10"}
	var next atomic.Int64
	b.SetParallelism(5)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := &gosnmp.GoSNMP{Target: addr.IP.String(), Port: uint16(addr.Port), Version: gosnmp.Version2c,
			Timeout: 2 * time.Second, MaxRepetitions: 25}
		if err := g.Connect(); err != nil {
			b.Error(err)
			return
		}
		defer g.Conn.Close()
		for pb.Next() {
			g.Community = fmt.Sprintf("sim-%05d", 1+next.Add(1)%10000)
			if _, err := g.Get([]string{".1.3.6.1.2.1.1.3.0", ".1.3.6.1.2.1.1.5.0"}); err != nil {
				b.Error(err)
				return
			}
			for _, c := range cols {
				vs, err := g.BulkWalkAll(c)
				if err != nil || len(vs) != 24 {
					b.Errorf("walk %s: %d rows, %v", c, len(vs), err)
					return
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
	st := srv.Stats()
	b.ReportMetric(float64(st.Requests)/b.Elapsed().Seconds(), "req/s")
}
