package worker

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/retry"
	"github.com/duroworker/duroworker/session"
)

// Clock tells the time; tests may substitute their own.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Defaults for Options fields left zero.
const (
	DefaultOrchestrationConcurrency = 8
	DefaultActivityConcurrency      = 16
	DefaultOrchestrationLockTimeout = 5 * time.Second
	DefaultActivityLockTimeout      = 30 * time.Second
	DefaultMaxAttempts              = 10
	DefaultBlockTimeout             = 5 * time.Second
	DefaultReplayCacheSize          = 1024
	DefaultUnregisteredBackoffBase  = time.Second
	DefaultUnregisteredBackoffMax   = 60 * time.Second
	DefaultMaxMessagesPerTurn       = 1000
	DefaultTimerPromotionBatch      = 256
	DefaultNodeHeartbeat            = 5 * time.Second
	DefaultAckBatchSize             = 64
)

// Options configures a Worker. The zero value of every field selects the
// documented default.
type Options struct {
	// NodeID identifies this worker process in logs and activity contexts.
	// If empty, it is "<hostname>-<pid>-<random>". One process per NodeID
	// at a time: a process that starts under a NodeID takes back the locks
	// an earlier one left (a restart under a stable name), and Start fails
	// with ErrNodeIDInUse while another live process advertises it.
	NodeID string

	// OrchestrationConcurrency is the number of orchestration turns run at
	// once. If zero, 8. Negative: the worker runs no orchestrations.
	OrchestrationConcurrency int
	// ActivityConcurrency is the number of activities run at once. If zero,
	// 16. Negative: the worker runs no activities.
	ActivityConcurrency int

	// OrchestrationLockTimeout is how long a turn holds its instance lock
	// before another worker may take the instance; the lock is renewed while
	// the turn runs. If zero, 5 seconds.
	OrchestrationLockTimeout time.Duration
	// ActivityLockTimeout is how long an activity holds its work item before
	// another worker may run it; renewed every third of it while the
	// activity runs. If zero, 30 seconds.
	ActivityLockTimeout time.Duration

	// MaxAttempts is how many times a message may be fetched without being
	// completed before it is treated as poison: an orchestration then fails
	// with poison details, an activity fails its orchestration. If zero, 10.
	MaxAttempts int

	// SupportedReplayVersions is the range of engine versions whose
	// executions this worker replays. If nil, every version up to this
	// worker's own engine version (capability.UpTo(engine.Version)).
	SupportedReplayVersions *capability.Range

	// BlockTimeout bounds how long an idle dispatcher waits for a wake-up
	// before fetching again. Idle workers block; they send about one command
	// per dispatcher per BlockTimeout. If zero, 5 seconds.
	BlockTimeout time.Duration

	// ReplayCacheSize is how many live orchestrations the sticky replay
	// cache keeps between turns. If zero, 1024. Negative disables the cache:
	// every turn replays from history (results are identical either way).
	ReplayCacheSize int

	// DisableEagerDispatch turns eager dispatch off. With it on (the
	// default), the ack of a turn that schedules activities this worker
	// runs claims them for its free activity slots (reserved before the
	// ack is sent) and runs them without fetching them, and the ack of an
	// activity whose orchestration's executor this worker holds in its
	// replay cache locks that orchestration's next turn for a free
	// orchestration slot: a sequential step then costs two round trips
	// instead of four. Eager items never exceed the concurrency limits;
	// when no slot is free the work goes through the shared queues. At
	// most queue.EagerTurnsMax turns of one instance in a row are locked
	// this way. See queue.Store.AckOrchestrationClaim and AckWorkClaim.
	DisableEagerDispatch bool

	// AckBatchSize is the most acks (of turns and activities) sent to
	// Redis in one round trip. An ack that finds no other ack in flight
	// goes out at once; acks that finish while one is in flight go out
	// together when it returns, as one pipeline, each with its own result
	// (see queue.Store.AckBatch). There is no waiting window: batching
	// only happens when acks queue up anyway. If zero, 64. 1 or negative
	// sends every ack on its own round trip, concurrently.
	AckBatchSize int

	// UnregisteredBackoffBase and UnregisteredBackoffMax bound the
	// exponential backoff (doubling) applied to work whose orchestration or
	// activity is not registered on this worker, so that an upgraded worker
	// can take it meanwhile. If zero, 1 second and 60 seconds.
	UnregisteredBackoffBase time.Duration
	UnregisteredBackoffMax  time.Duration

	// ActivityCancellationGrace is how long a cancelled activity (its lock
	// was taken away: its orchestration ended or dropped it, or Shutdown
	// released it) may keep its slot before the worker stops waiting for it;
	// its result is dropped either way. If zero, 5 seconds.
	ActivityCancellationGrace time.Duration

	// Sessions are the settings of the sessions this worker owns: their
	// lease, their idle timeout (which must exceed ActivityLockTimeout) and
	// how many it holds at once (negative: it takes no session activities).
	// The zero value selects the session package's defaults. Sessions are
	// owned under NodeID: a restarted node with the same NodeID gets its
	// sessions back.
	Sessions session.Options

	// Tags selects the activities this worker runs by tag. The zero value
	// runs untagged activities only (DefaultTagsOnly).
	Tags TagFilter

	// NodeHeartbeat is how often the worker advertises the buckets it serves
	// (a node counts as live for three heartbeats) and looks for work that
	// no live node serves, which it then fetches to back off and finally
	// poison. If zero, 5 seconds.
	NodeHeartbeat time.Duration

	// TracerProvider and MeterProvider receive the worker's spans (one per
	// orchestration turn and activity execution, joined into one trace per
	// orchestration) and metrics. If nil, the global providers
	// (otel.GetTracerProvider, otel.GetMeterProvider), which do nothing
	// until the application installs real ones.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider

	// Logger receives the worker's logs. If nil, slog.Default().
	Logger *slog.Logger
	// Clock is the time source of turns. If nil, the system clock.
	Clock Clock

	// AllowEvictingRedis lets Start run on a Redis whose maxmemory-policy
	// may evict keys (anything but noeviction). UNSAFE: an evicted key
	// silently loses an instance, a history, a lock or a counter. By
	// default Start refuses such a Redis with queue.ErrEvictingRedis; with
	// this set it only logs a warning. A Redis that does not let the worker
	// read the policy (CONFIG denied) is accepted with a warning either way.
	AllowEvictingRedis bool
}

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.NodeID == "" {
		host, _ := os.Hostname()
		o.NodeID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:6])
	}
	if o.OrchestrationConcurrency == 0 {
		o.OrchestrationConcurrency = DefaultOrchestrationConcurrency
	}
	if o.ActivityConcurrency == 0 {
		o.ActivityConcurrency = DefaultActivityConcurrency
	}
	if o.OrchestrationLockTimeout == 0 {
		o.OrchestrationLockTimeout = DefaultOrchestrationLockTimeout
	}
	if o.ActivityLockTimeout == 0 {
		o.ActivityLockTimeout = DefaultActivityLockTimeout
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.BlockTimeout == 0 {
		o.BlockTimeout = DefaultBlockTimeout
	}
	if o.ReplayCacheSize == 0 {
		o.ReplayCacheSize = DefaultReplayCacheSize
	}
	if o.AckBatchSize == 0 {
		o.AckBatchSize = DefaultAckBatchSize
	}
	if o.UnregisteredBackoffBase == 0 {
		o.UnregisteredBackoffBase = DefaultUnregisteredBackoffBase
	}
	if o.UnregisteredBackoffMax == 0 {
		o.UnregisteredBackoffMax = DefaultUnregisteredBackoffMax
	}
	if o.ActivityCancellationGrace == 0 {
		o.ActivityCancellationGrace = 5 * time.Second
	}
	o.Sessions = o.Sessions.WithDefaults()
	if o.NodeHeartbeat == 0 {
		o.NodeHeartbeat = DefaultNodeHeartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	return o
}

// Validate reports the first problem with o, defaults applied, or nil. It
// checks the fields in the order Options declares them:
// OrchestrationLockTimeout, ActivityLockTimeout (each at least 100ms),
// MaxAttempts (at least 1), SupportedReplayVersions (it must include this
// worker's engine version when the worker runs orchestrations),
// BlockTimeout, UnregisteredBackoffBase, UnregisteredBackoffMax (not below
// the base), ActivityCancellationGrace (none negative), Sessions (see
// session.Options.Validate), Tags, NodeHeartbeat (not negative). New calls
// it, and so does the duroworker CLI, so one bad input gives one message,
// "worker options: <field> ...", wherever it is entered.
func (o Options) Validate() error {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return fmt.Errorf("worker options: %w", err)
	}
	return nil
}

// validate is Validate on options with defaults applied, without the prefix.
func (o Options) validate() error {
	lock := func(name string, d time.Duration) error {
		switch {
		case d < 0:
			return fmt.Errorf("%s must not be negative, got %s", name, d)
		case d < minLockTimeout:
			return fmt.Errorf("%s must be at least %s, got %s", name, minLockTimeout, d)
		}
		return nil
	}
	notNegative := func(name string, d time.Duration) error {
		if d < 0 {
			return fmt.Errorf("%s must not be negative, got %s", name, d)
		}
		return nil
	}
	if err := lock("OrchestrationLockTimeout", o.OrchestrationLockTimeout); err != nil {
		return err
	}
	if err := lock("ActivityLockTimeout", o.ActivityLockTimeout); err != nil {
		return err
	}
	if o.MaxAttempts < 1 {
		return fmt.Errorf("MaxAttempts must be at least 1, got %d", o.MaxAttempts)
	}
	if r := o.SupportedReplayVersions; r != nil && o.OrchestrationConcurrency > 0 {
		// A worker that runs orchestrations pins every execution it starts to
		// its own engine version; a range without that version would start
		// executions and then never fetch them again.
		if own := semver.MustParse(engine.Version); !r.Contains(own) {
			return fmt.Errorf("SupportedReplayVersions %s excludes this worker's own engine version %s: "+
				"executions it starts are pinned to %s and it would never replay them; include %s in the range",
				r, engine.Version, engine.Version, engine.Version)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"BlockTimeout", o.BlockTimeout}, {"UnregisteredBackoffBase", o.UnregisteredBackoffBase}, {"UnregisteredBackoffMax", o.UnregisteredBackoffMax}} {
		if err := notNegative(d.name, d.v); err != nil {
			return err
		}
	}
	if o.UnregisteredBackoffMax < o.UnregisteredBackoffBase {
		return fmt.Errorf("UnregisteredBackoffMax (%s) is below UnregisteredBackoffBase (%s)", o.UnregisteredBackoffMax, o.UnregisteredBackoffBase)
	}
	if err := notNegative("ActivityCancellationGrace", o.ActivityCancellationGrace); err != nil {
		return err
	}
	if err := o.Sessions.Validate(o.ActivityLockTimeout); err != nil {
		return err
	}
	if err := o.Tags.validate(); err != nil {
		return err
	}
	return notNegative("NodeHeartbeat", o.NodeHeartbeat)
}

// minLockTimeout is the shortest orchestration or activity lock timeout.
const minLockTimeout = 100 * time.Millisecond

// unregisteredDelay is the backoff before the attempt-th retry of work whose
// handler is not registered here: base doubling per attempt, capped.
func (o Options) unregisteredDelay(attempt int) time.Duration {
	return retry.Doubling(o.UnregisteredBackoffBase, o.UnregisteredBackoffMax, attempt)
}
