package engine

import (
	"fmt"
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Backoff is the durable delay between the attempts of a retried activity.
// Build one with NoBackoff, FixedBackoff, LinearBackoff or ExponentialBackoff;
// the zero value retries at once.
type Backoff struct {
	kind       string
	base       time.Duration
	max        time.Duration
	multiplier float64
}

// NoBackoff retries at once.
func NoBackoff() Backoff { return Backoff{} }

// FixedBackoff waits d between attempts.
func FixedBackoff(d time.Duration) Backoff { return Backoff{kind: "fixed", base: d} }

// LinearBackoff waits base*attempt after the attempt-th failure, at most max
// (no cap when max is zero).
func LinearBackoff(base, max time.Duration) Backoff {
	return Backoff{kind: "linear", base: base, max: max}
}

// ExponentialBackoff waits base*multiplier^(attempt-1) after the attempt-th
// failure, at most max (no cap when max is zero). A multiplier below 1 counts
// as 1.
func ExponentialBackoff(base time.Duration, multiplier float64, max time.Duration) Backoff {
	return Backoff{kind: "exponential", base: base, multiplier: multiplier, max: max}
}

// String describes the backoff, as in "exponential from 100ms x2 up to 30s".
func (b Backoff) String() string {
	switch b.kind {
	case "fixed":
		return "fixed " + b.base.String()
	case "linear":
		return fmt.Sprintf("linear from %s up to %s", b.base, b.max)
	case "exponential":
		return fmt.Sprintf("exponential from %s x%g up to %s", b.base, b.multiplier, b.max)
	}
	return "none"
}

// Delay returns the wait after the given failed attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	attempt = max(attempt, 1)
	var d time.Duration
	switch b.kind {
	case "fixed":
		d = b.base
	case "linear":
		d = b.base * time.Duration(attempt)
	case "exponential":
		d = b.exponential(attempt)
	}
	if b.max > 0 && d > b.max {
		d = b.max
	}
	return d
}

// exponential walks cenkalti/backoff's schedule, without randomisation (a
// replay must compute the same timers), to the attempt-th interval.
func (b Backoff) exponential(attempt int) time.Duration {
	if b.multiplier <= 1 {
		return b.base
	}
	eb := &backoff.ExponentialBackOff{
		InitialInterval: b.base,
		Multiplier:      b.multiplier,
		MaxInterval:     time.Duration(math.MaxInt64),
		Stop:            backoff.Stop,
		Clock:           zeroClock{},
	}
	if b.max > 0 {
		eb.MaxInterval = b.max
	}
	eb.Reset()
	d := eb.NextBackOff()
	for i := 1; i < attempt && d < eb.MaxInterval; i++ {
		d = eb.NextBackOff()
	}
	return d
}

// zeroClock keeps the backoff computation free of the wall clock (elapsed
// time is not used: MaxElapsedTime is zero).
type zeroClock struct{}

func (zeroClock) Now() time.Time { return time.Time{} }

// RetryPolicy says how WithRetry retries an activity.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, at least 1.
	MaxAttempts int
	// Backoff is the delay between attempts.
	Backoff Backoff
}

// DefaultRetryPolicy is 3 attempts with exponential backoff from 100 ms,
// doubling, capped at 30 s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 3, Backoff: ExponentialBackoff(100*time.Millisecond, 2, 30*time.Second)}
}

// NewRetryPolicy returns DefaultRetryPolicy with maxAttempts attempts.
func NewRetryPolicy(maxAttempts int) RetryPolicy {
	p := DefaultRetryPolicy()
	p.MaxAttempts = maxAttempts
	return p
}

// WithBackoff returns p with the given backoff.
func (p RetryPolicy) WithBackoff(b Backoff) RetryPolicy { p.Backoff = b; return p }
