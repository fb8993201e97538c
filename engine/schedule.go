package engine

import (
	"time"

	"github.com/duroworker/duroworker/internal/replay"
)

// An ActivityOption configures one ScheduleActivity call: WithTag,
// WithSession, WithRetry, WithTimeout.
type ActivityOption struct{ apply func(*replay.ActivityCall) }

// WithTag routes the activity to workers that serve tag (see the worker's
// TagFilter). Without it the activity goes to the default, untagged workers.
func WithTag(tag string) ActivityOption {
	return ActivityOption{func(o *replay.ActivityCall) { o.Tag = tag }}
}

// WithSession pins the activity to the worker that owns session id: the first
// activity of a session claims it for the worker that fetches it, later ones
// go to that worker while it holds the session (until it is idle for the
// worker's session idle timeout, dies, or shuts down).
func WithSession(id string) ActivityOption {
	return ActivityOption{func(o *replay.ActivityCall) { o.Session = id }}
}

// WithRetry retries a failed activity under policy. Each attempt is its own
// ActivityScheduled event and each delay a durable timer, so retries survive
// worker restarts; the future resolves with the first success or the last
// attempt's error. Options such as WithTag and WithSession apply to every
// attempt. A poisoned attempt is not retried: it fails the orchestration.
func WithRetry(policy RetryPolicy) ActivityOption {
	return ActivityOption{func(o *replay.ActivityCall) {
		o.Retry = &replay.Retry{MaxAttempts: policy.MaxAttempts, Delay: policy.Backoff.Delay}
	}}
}

// WithTimeout bounds each attempt by a durable timer of d. An attempt that
// has not finished in time is cancelled (its worker sees its context
// cancelled) and the future fails with an error of kind KindTimeout at once,
// without further retries: a timeout means the activity is slow, not that it
// failed, and retrying slow work multiplies the load that made it slow.
func WithTimeout(d time.Duration) ActivityOption {
	return ActivityOption{func(o *replay.ActivityCall) { o.Timeout = d }}
}

// ScheduleActivity schedules the activity name with input and returns a
// future for its result. An activity error is returned by Get as
// *ErrorDetails of category application; a poisoned activity fails the whole
// orchestration instead. An invalid call (bad name, tag or session, input over
// MaxPayloadBytes, a retry policy without attempts, a negative timeout)
// returns a future that has already failed, and schedules nothing.
func (c *OrchestrationContext) ScheduleActivity(name, input string, opts ...ActivityOption) *Future[string] {
	return stringFuture(c.c.ScheduleActivity(name, input, activityCall(opts)))
}

// ScheduleActivityTyped is ScheduleActivity with input encoded by Encode and
// the result decoded as Out by Decode. An input that cannot be encoded makes
// the future fail with an application error.
func ScheduleActivityTyped[Out any](c *OrchestrationContext, name string, input any, opts ...ActivityOption) *Future[Out] {
	in, err := Encode(input)
	if err != nil {
		return failedFuture[Out](ApplicationError(KindActivityFailed, err.Error()))
	}
	return typedFuture[Out](c.c.ScheduleActivity(name, in, activityCall(opts)))
}

func activityCall(opts []ActivityOption) replay.ActivityCall {
	var o replay.ActivityCall
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// SubOrchestrationMarker separates a parent id from the generated part of an
// automatic child id; client starts reject ids that contain it.
const SubOrchestrationMarker = "::sub::"

// A SubOrchestrationOption configures one ScheduleSubOrchestration call:
// WithInstanceID, WithVersion, Detached.
type SubOrchestrationOption struct{ apply func(*replay.SubCall) }

// WithInstanceID gives the child instance id. Without it the id is generated
// as "<parent>::sub::<execution>.<event id>" (or "::detached::" for a
// detached start), unique across continue-as-new generations.
func WithInstanceID(id string) SubOrchestrationOption {
	return SubOrchestrationOption{func(o *replay.SubCall) { o.InstanceID = id }}
}

// WithVersion starts the child at version v (MAJOR.MINOR.PATCH) instead of
// the version the registry's policy picks.
func WithVersion(v string) SubOrchestrationOption {
	return SubOrchestrationOption{func(o *replay.SubCall) { o.Version = v }}
}

// Detached starts the orchestration without a parent link: fire and forget.
// Its future resolves at once with the started instance id; the orchestration
// does not wait for it, does not receive its result and does not cancel it. If
// the id is taken the start is ignored.
func Detached() SubOrchestrationOption {
	return SubOrchestrationOption{func(o *replay.SubCall) { o.Detached = true }}
}

// ScheduleSubOrchestration starts orchestration name as a child and returns
// a future for its output. The child's parent link (instance, execution and
// event) is stored durably with it, so its result reaches this execution from
// any worker. If the child id is already taken, the future fails with an
// application error. A child that fails for a system reason (poison,
// nondeterminism) fails this orchestration too; an application failure is
// returned by Get. With Detached the child is started without a link.
func (c *OrchestrationContext) ScheduleSubOrchestration(name, input string, opts ...SubOrchestrationOption) *Future[string] {
	return stringFuture(c.c.ScheduleSubOrchestration(name, input, subCall(opts)))
}

// ScheduleSubOrchestrationTyped is ScheduleSubOrchestration with input
// encoded by Encode and the output decoded as Out.
func ScheduleSubOrchestrationTyped[Out any](c *OrchestrationContext, name string, input any, opts ...SubOrchestrationOption) *Future[Out] {
	in, err := Encode(input)
	if err != nil {
		return failedFuture[Out](ApplicationError(KindOrchestrationFailed, err.Error()))
	}
	return typedFuture[Out](c.c.ScheduleSubOrchestration(name, in, subCall(opts)))
}

func subCall(opts []SubOrchestrationOption) replay.SubCall {
	var o replay.SubCall
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}
