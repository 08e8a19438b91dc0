package uplink

import (
	"math/rand/v2"
	"time"
)

// backoff yields jittered, exponentially growing delays between reconnects:
// the base delay starts at min and doubles up to max; each delay is drawn
// uniformly from [base/2, base] so that agents cut off together do not come
// back together.
type backoff struct {
	min, max time.Duration
	base     time.Duration // 0 before the first delay and after a reset
	rand     func() float64
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, rand: rand.Float64}
}

// Next returns the delay before the next attempt and grows the base.
func (b *backoff) Next() time.Duration {
	if b.base == 0 {
		b.base = b.min
	} else {
		b.base = min(2*b.base, b.max)
	}
	half := b.base / 2
	return half + time.Duration(b.rand()*float64(b.base-half))
}

// Reset starts the sequence again at min; called after a stream that lived
// long enough to count as a success.
func (b *backoff) Reset() { b.base = 0 }
