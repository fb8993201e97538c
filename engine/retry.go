package engine

import (
	"fmt"
	"math"
	"time"
)

// BackoffKind names a retry delay strategy.
type BackoffKind string

// Backoff kinds.
const (
	BackoffNone        BackoffKind = "none"
	BackoffFixed       BackoffKind = "fixed"
	BackoffLinear      BackoffKind = "linear"
	BackoffExponential BackoffKind = "exponential"
)

// Backoff computes the durable delay before retry attempt n+1 after attempt n
// failed. Build one with NoBackoff, FixedBackoff, LinearBackoff or
// ExponentialBackoff.
type Backoff struct {
	Kind       BackoffKind
	Base       time.Duration
	Max        time.Duration
	Multiplier float64
}

// NoBackoff retries at once.
func NoBackoff() Backoff { return Backoff{Kind: BackoffNone} }

// FixedBackoff waits d between attempts.
func FixedBackoff(d time.Duration) Backoff { return Backoff{Kind: BackoffFixed, Base: d} }

// LinearBackoff waits base*attempt, at most max.
func LinearBackoff(base, max time.Duration) Backoff {
	return Backoff{Kind: BackoffLinear, Base: base, Max: max}
}

// ExponentialBackoff waits base*multiplier^(attempt-1), at most max.
func ExponentialBackoff(base time.Duration, multiplier float64, max time.Duration) Backoff {
	return Backoff{Kind: BackoffExponential, Base: base, Multiplier: multiplier, Max: max}
}

// Delay returns the wait after the given failed attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	var d time.Duration
	switch b.Kind {
	case BackoffFixed:
		d = b.Base
	case BackoffLinear:
		d = b.Base * time.Duration(attempt)
	case BackoffExponential:
		m := b.Multiplier
		if m < 1 {
			m = 1
		}
		f := float64(b.Base) * math.Pow(m, float64(attempt-1))
		if f > math.MaxInt64/2 {
			f = math.MaxInt64 / 2
		}
		d = time.Duration(f)
	default:
		return 0
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	return d
}

// RetryPolicy says how ScheduleActivityWithRetry retries an activity. Each
// attempt is its own ActivityScheduled event and each delay a durable timer.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, at least 1.
	MaxAttempts int
	// Backoff is the delay between attempts.
	Backoff Backoff
	// Timeout, when positive, bounds each attempt: an attempt that has not
	// finished in time fails the call with a timeout error at once, without
	// further retries.
	Timeout time.Duration
}

// DefaultRetryPolicy is 3 attempts with exponential backoff from 100 ms,
// doubling, capped at 30 s, and no timeout.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 3, Backoff: ExponentialBackoff(100*time.Millisecond, 2, 30*time.Second)}
}

// NewRetryPolicy returns DefaultRetryPolicy with maxAttempts attempts.
func NewRetryPolicy(maxAttempts int) RetryPolicy {
	p := DefaultRetryPolicy()
	p.MaxAttempts = maxAttempts
	return p
}

// WithTimeout returns p with a per-attempt timeout.
func (p RetryPolicy) WithTimeout(d time.Duration) RetryPolicy { p.Timeout = d; return p }

// WithBackoff returns p with the given backoff.
func (p RetryPolicy) WithBackoff(b Backoff) RetryPolicy { p.Backoff = b; return p }

// ScheduleActivityWithRetry runs an activity until it succeeds or the policy's
// attempts are spent, and returns the last error. A timeout is not retried.
// A policy with MaxAttempts < 1 fails at once with an application error.
func (c *OrchestrationContext) ScheduleActivityWithRetry(name, input string, policy RetryPolicy) (string, error) {
	return c.ScheduleActivityWithRetryOptions(name, input, policy, ActivityOptions{})
}

// ScheduleActivityWithRetryOnSession is ScheduleActivityWithRetry with every
// attempt on the same session.
func (c *OrchestrationContext) ScheduleActivityWithRetryOnSession(name, input string, policy RetryPolicy, sessionID string) (string, error) {
	return c.ScheduleActivityWithRetryOptions(name, input, policy, ActivityOptions{SessionID: sessionID})
}

// ScheduleActivityWithRetryOptions is ScheduleActivityWithRetry with
// activity options (tag, session) applied to every attempt.
func (c *OrchestrationContext) ScheduleActivityWithRetryOptions(name, input string, policy RetryPolicy, opts ActivityOptions) (string, error) {
	if policy.MaxAttempts < 1 {
		return "", ApplicationError(KindActivityFailed, fmt.Sprintf("retry policy for %q: MaxAttempts must be at least 1, got %d", name, policy.MaxAttempts))
	}
	var lastErr error
	for attempt := 1; attempt <= policy.MaxAttempts; attempt++ {
		act := c.ScheduleActivityWithOptions(name, input, opts)
		if policy.Timeout > 0 {
			timer := c.ScheduleTimer(policy.Timeout)
			if c.Select(act, timer) == 1 {
				return "", &ErrorDetails{Category: CategoryApplication, Kind: KindTimeout,
					Message: fmt.Sprintf("activity %s timed out after %s", name, policy.Timeout)}
			}
		}
		out, err := act.Get()
		if err == nil {
			return out, nil
		}
		lastErr = err
		if IsPoison(err) || attempt == policy.MaxAttempts {
			break
		}
		c.TraceWarn(fmt.Sprintf("activity %s attempt %d/%d failed: %v; retrying", name, attempt, policy.MaxAttempts, err))
		if d := policy.Backoff.Delay(attempt); d > 0 {
			if _, err := c.ScheduleTimer(d).Get(); err != nil {
				return "", err
			}
		}
	}
	return "", lastErr
}

// ScheduleActivityWithRetryTyped is ScheduleActivityWithRetry with typed
// input and output.
func ScheduleActivityWithRetryTyped[Out any](c *OrchestrationContext, name string, input any, policy RetryPolicy) (Out, error) {
	var zero Out
	in, err := Encode(input)
	if err != nil {
		return zero, ApplicationError(KindActivityFailed, err.Error())
	}
	out, err := c.ScheduleActivityWithRetry(name, in, policy)
	if err != nil {
		return zero, err
	}
	v, err := Decode[Out](out)
	if err != nil {
		return zero, ApplicationError(KindActivityFailed, err.Error())
	}
	return v, nil
}
