// Package retry builds duroworker's exponential backoffs on
// github.com/cenkalti/backoff/v4, so that the growth and the cap are
// computed in one place: the worker's waits between store retries and after
// store errors, its backoff of unregistered work, and the store's waits
// while Redis refuses commands.
package retry

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// New returns a started exponential backoff from initial up to max, with the
// library's multiplier (1.5) and jitter (±50%), and no limit on the elapsed
// time (set MaxElapsedTime for one).
func New(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = max
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// Doubling returns the wait before the nth retry (n >= 1; less counts as
// 1): initial doubled n-1 times, capped at max, without jitter.
func Doubling(initial, max time.Duration, n int) time.Duration {
	b := New(initial, max)
	b.Multiplier = 2
	b.RandomizationFactor = 0
	d := b.NextBackOff()
	for i := 1; i < n && d < max; i++ {
		d = b.NextBackOff()
	}
	return min(d, max)
}
