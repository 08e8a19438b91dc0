// Package flow turns captured packets into flows and flow features. It owns
// the packet decoder (a hand-written fast path for the common
// Ethernet[/802.1Q]/IPv4|IPv6/TCP|UDP stacks and gopacket's
// DecodingLayerParser for everything else), the flow table (a pointer-free
// open-addressing table with a timing wheel that expires flows on packet
// timestamps), packet sources (pcap and pcapng replay, live AF_PACKET
// capture with a BPF filter) and the per-interval features (active flows,
// new flows, distinct sources and destinations, top talkers, fan-out and
// fan-in) that it hands to the detection engine as collector.Sample values.
//
// Nothing in the packet path allocates per packet, and nothing in it reads
// the wall clock: time is the packet's timestamp, so a pcap replay and the
// live capture it was recorded from give the same flows and features.
// Packets that cannot be decoded are counted by reason, never fatal.
package flow
