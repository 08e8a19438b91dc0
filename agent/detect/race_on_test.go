//go:build race

package detect

// raceOn: the race detector slows the packet path about tenfold; the long
// traffic replays shorten or skip (make bench-flow-noise runs them in full).
const raceOn = true
