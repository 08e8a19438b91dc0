// Package flow turns captured packets into flows and flow features. It owns
// the packet decoder (a hand-written fast path for the common
// Ethernet[/802.1Q]/IPv4|IPv6/TCP|UDP|ICMP stacks and gopacket's
// DecodingLayerParser for everything else), the flow table (a pointer-free
// open-addressing table with a timing wheel that expires flows on packet
// timestamps), packet sources (pcap and pcapng replay, live AF_PACKET
// TPACKET_V3 capture with a kernel BPF filter compiled here) and the
// per-interval features (active flows, new flows, distinct sources and
// destinations, top talkers, fan-out and fan-in) that it hands to the
// detection engine as collector.Sample values.
//
// Nothing in the packet path allocates per packet, and nothing in it reads
// the wall clock: time is the packet's timestamp, so a pcap replay and the
// live capture it was recorded from give the same flows and features.
// Packets that cannot be decoded are counted by Reason, never fatal.
//
// # Use
//
// One Meter per capture point, fed by one Source:
//
//	src, err := flow.OpenLive(flow.LiveOptions{Interface: "eth0", Filter: "not port 22"})
//	// or flow.OpenFile("trace.pcapng", flow.FileOptions{Paced: true})
//	m := flow.NewMeter(flow.MeterConfig{Name: "eth0"}, src.LinkType(), log,
//		func(s *flow.Snapshot) { samples := s.Samples("edge1"); ... })
//	err = m.Run(ctx, src) // or flow.RunAll(ctx, captures) for several
//
// # For rules
//
// Each closed interval is a Snapshot: the numbers behind the samples plus
// the evidence a rule needs. A port_scan rule reads Snapshot.FanOut (per
// source: new flows, distinct destination ports and addresses); a sweep
// shows as many addresses, a vertical scan as many ports on one. A
// syn_flood rule reads Snapshot.HalfOpen and Snapshot.FanIn (per
// destination: new flows, distinct sources, flows opened by a bare SYN). A
// volume rule reads TopTalkers. The same numbers arrive as samples named
// by the Metric* constants, labelled with the capture point and, for the
// per-address series, src or dst. Ended flows reach TableConfig.OnEnd as
// Records whose FlowKey is the shared collector.FlowKey.
package flow
