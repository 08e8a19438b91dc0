package outbox

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// On disk an outbox is a directory of segment files, each named by the
// first seq it may hold (%020d.seg) and holding framed records:
//
//	magic   uint32 LE  0x424f414e ("NAOB")
//	length  uint32 LE  payload bytes
//	crc     uint32 LE  CRC-32C of the length bytes and the payload
//	payload            kind byte, then the kind's fields
//
// The magic lets recovery find the next record after a damaged one, so a
// torn or flipped record costs that record only. Payload kinds:
//
//	header  log id [16], base seq u64, acked seq u64, dropped total u64
//	        (first record of every segment)
//	event   seq u64, flags u8 (bit 0: expendable), JSON of detect.Change:
//	        written by versions before records had a format; read back
//	        as an entry of LegacyFormat
//	drop    seq u64, dropped total u64 (the event seq was dropped: full)
//	ack     acked seq u64 (cumulative; written without fsync, a hint)
//	state   acked seq u64, last seq u64, dropped total u64: the counters,
//	        where no other record carries them (drops of events that were
//	        never stored, a reclaimed active segment)
//	record  seq u64, flags u8 (bit 0: expendable), format u8, payload:
//	        an event; the format says how the caller encoded the payload,
//	        which the outbox neither reads nor changes
//
// A log written by an older version stays readable; one written by this
// version is not readable by versions before the record kind.
const frameMagic uint32 = 0x424f414e

const (
	frameHeader = 12
	// maxPayload bounds one record; a length above it is damage.
	maxPayload = 1 << 20

	kindHeader byte = 1
	kindEvent  byte = 2 // before formats: JSON of detect.Change
	kindDrop   byte = 3
	kindAck    byte = 4
	kindState  byte = 5
	kindRecord byte = 6

	flagExpendable byte = 1

	headerPayload = 1 + 16 + 8 + 8 + 8
	dropPayload   = 1 + 8 + 8
	ackPayload    = 1 + 8
	statePayload  = 1 + 8 + 8 + 8
	eventFixed    = 1 + 8 + 1     // before the JSON
	recordFixed   = 1 + 8 + 1 + 1 // before the payload
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	magicBytes = binary.LittleEndian.AppendUint32(nil, frameMagic)
)

// appendFrame appends one framed record holding payload to buf.
func appendFrame(buf, payload []byte) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, frameMagic)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
	crc := crc32.Update(0, castagnoli, buf[len(buf)-4:])
	crc = crc32.Update(crc, castagnoli, payload)
	buf = binary.LittleEndian.AppendUint32(buf, crc)
	return append(buf, payload...)
}

// parseFrame reads the record at data[p:]; ok is false when there is no
// intact record there.
func parseFrame(data []byte, p int) (payload []byte, n int, ok bool) {
	if len(data)-p < frameHeader {
		return nil, 0, false
	}
	h := data[p : p+frameHeader]
	if binary.LittleEndian.Uint32(h[0:4]) != frameMagic {
		return nil, 0, false
	}
	length := int(binary.LittleEndian.Uint32(h[4:8]))
	if length == 0 || length > maxPayload || length > len(data)-p-frameHeader {
		return nil, 0, false
	}
	payload = data[p+frameHeader : p+frameHeader+length]
	crc := crc32.Update(0, castagnoli, h[4:8])
	crc = crc32.Update(crc, castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(h[8:12]) {
		return nil, 0, false
	}
	return payload, frameHeader + length, true
}

// scanFrames calls fn for every intact record of data with its offset and
// frame length, and returns how many damaged regions it skipped: a region
// is everything from a bad record up to the next intact one (or the end).
// fn returns false when an intact frame's payload makes no sense, which
// counts as damage too.
func scanFrames(data []byte, fn func(off, n int, payload []byte) bool) (damaged int) {
	bad := false
	for p := 0; p < len(data); {
		if payload, n, ok := parseFrame(data, p); ok && fn(p, n, payload) {
			p += n
			bad = false
			continue
		}
		if !bad {
			damaged++
			bad = true
		}
		i := bytes.Index(data[p+1:], magicBytes)
		if i < 0 {
			break
		}
		p += 1 + i
	}
	return damaged
}

// segHeader is the first record of a segment: which log it belongs to and
// the counters when it was written, so that they survive the deletion of
// older segments.
type segHeader struct {
	logID   [16]byte
	base    uint64
	acked   uint64
	dropped uint64
}

func (h segHeader) payload() []byte {
	b := make([]byte, 0, headerPayload)
	b = append(b, kindHeader)
	b = append(b, h.logID[:]...)
	b = binary.LittleEndian.AppendUint64(b, h.base)
	b = binary.LittleEndian.AppendUint64(b, h.acked)
	return binary.LittleEndian.AppendUint64(b, h.dropped)
}

func parseHeader(p []byte) (segHeader, bool) {
	if len(p) != headerPayload || p[0] != kindHeader {
		return segHeader{}, false
	}
	var h segHeader
	copy(h.logID[:], p[1:17])
	h.base = binary.LittleEndian.Uint64(p[17:25])
	h.acked = binary.LittleEndian.Uint64(p[25:33])
	h.dropped = binary.LittleEndian.Uint64(p[33:41])
	return h, true
}

// recordPayload is the payload of an event record.
func recordPayload(seq uint64, expendable bool, format uint8, data []byte) []byte {
	b := make([]byte, 0, recordFixed+len(data))
	b = append(b, kindRecord)
	b = binary.LittleEndian.AppendUint64(b, seq)
	var flags byte
	if expendable {
		flags |= flagExpendable
	}
	return append(append(b, flags, format), data...)
}

// parseEvent reads an event record of either kind: a legacy event is of
// LegacyFormat. ok is false for anything else.
func parseEvent(p []byte) (seq uint64, expendable bool, format uint8, data []byte, ok bool) {
	switch {
	case len(p) > eventFixed && p[0] == kindEvent:
		return binary.LittleEndian.Uint64(p[1:9]), p[9]&flagExpendable != 0, LegacyFormat, p[eventFixed:], true
	case len(p) > recordFixed && p[0] == kindRecord && p[10] != 0:
		return binary.LittleEndian.Uint64(p[1:9]), p[9]&flagExpendable != 0, p[10], p[recordFixed:], true
	}
	return 0, false, 0, nil, false
}

// statePayloadOf records the counters: acked seq, last seq numbered,
// dropped total.
func statePayloadOf(acked, last, dropped uint64) []byte {
	b := make([]byte, 0, statePayload)
	b = append(b, kindState)
	b = binary.LittleEndian.AppendUint64(b, acked)
	b = binary.LittleEndian.AppendUint64(b, last)
	return binary.LittleEndian.AppendUint64(b, dropped)
}

func dropPayloadOf(seq, total uint64) []byte {
	b := make([]byte, 0, dropPayload)
	b = append(b, kindDrop)
	b = binary.LittleEndian.AppendUint64(b, seq)
	return binary.LittleEndian.AppendUint64(b, total)
}

func ackPayloadOf(seq uint64) []byte {
	b := make([]byte, 0, ackPayload)
	b = append(b, kindAck)
	return binary.LittleEndian.AppendUint64(b, seq)
}

// segName is a segment's file name: its base seq, zero padded so that names
// sort like numbers.
func segName(base uint64) string { return fmt.Sprintf("%020d.seg", base) }
