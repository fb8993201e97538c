package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/session"
)

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{
		"NodeID":                   o.NodeID != "",
		"OrchestrationConcurrency": o.OrchestrationConcurrency == DefaultOrchestrationConcurrency,
		"ActivityConcurrency":      o.ActivityConcurrency == DefaultActivityConcurrency,
		"OrchestrationLockTimeout": o.OrchestrationLockTimeout == DefaultOrchestrationLockTimeout,
		"ActivityLockTimeout":      o.ActivityLockTimeout == DefaultActivityLockTimeout,
		"MaxAttempts":              o.MaxAttempts == 10,
		"BlockTimeout":             o.BlockTimeout == DefaultBlockTimeout,
		"ReplayCacheSize":          o.ReplayCacheSize == DefaultReplayCacheSize,
		"NodeHeartbeat":            o.NodeHeartbeat == DefaultNodeHeartbeat,
		"Sessions":                 o.Sessions == session.Options{}.WithDefaults(),
		"Logger":                   o.Logger != nil,
		"Clock":                    o.Clock != nil,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("%s default not applied: %+v", name, o)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"negative lock", Options{ActivityLockTimeout: -time.Second}, "ActivityLockTimeout must not be negative, got -1s"},
		{"tiny lock", Options{OrchestrationLockTimeout: time.Millisecond}, "OrchestrationLockTimeout must be at least 100ms, got 1ms"},
		{"negative attempts", Options{MaxAttempts: -1}, "MaxAttempts must be at least 1, got -1"},
		{"replay range without own version", Options{SupportedReplayVersions: &capability.Range{Min: semver.MustParse("999.0.0"), Max: semver.MustParse("999.1.0")}},
			"SupportedReplayVersions [999.0.0, 999.1.0] excludes this worker's own engine version"},
		{"negative block timeout", Options{BlockTimeout: -time.Second}, "BlockTimeout must not be negative, got -1s"},
		{"backoff max below base", Options{UnregisteredBackoffBase: time.Minute, UnregisteredBackoffMax: time.Second}, "UnregisteredBackoffMax (1s) is below UnregisteredBackoffBase (1m0s)"},
		{"negative grace", Options{ActivityCancellationGrace: -time.Second}, "ActivityCancellationGrace must not be negative, got -1s"},
		{"session lease", Options{Sessions: session.Options{LockTimeout: time.Millisecond}}, "Sessions.LockTimeout must be at least 100ms, got 1ms"},
		{"session idle below activity lock", Options{ActivityLockTimeout: time.Minute, Sessions: session.Options{IdleTimeout: time.Second}},
			"Sessions.IdleTimeout (1s) must exceed ActivityLockTimeout (1m0s)"},
		{"negative heartbeat", Options{NodeHeartbeat: -time.Second}, "NodeHeartbeat must not be negative, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), "worker options: "+tt.want) {
				t.Fatalf("err = %v, want %q", err, "worker options: "+tt.want)
			}
		})
	}
}

// TestValidateReportsTheFirstProblemInDeclarationOrder: options with
// several bad fields always give the same message, naming the field that
// Options declares first, from Validate and from New alike.
func TestValidateReportsTheFirstProblemInDeclarationOrder(t *testing.T) {
	bad := Options{
		NodeHeartbeat:             -time.Second,
		Sessions:                  session.Options{LockTimeout: -time.Second},
		ActivityCancellationGrace: -time.Second,
		UnregisteredBackoffMax:    -time.Second,
		BlockTimeout:              -time.Second,
		ActivityLockTimeout:       -time.Second,
	}
	want := "worker options: ActivityLockTimeout must not be negative, got -1s"
	store := queue.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), queue.Options{})
	for range 50 {
		if err := bad.Validate(); err == nil || err.Error() != want {
			t.Fatalf("Validate: %v, want %q", err, want)
		}
		if _, err := New(store, nil, nil, bad); err == nil || err.Error() != want {
			t.Fatalf("New: %v, want %q", err, want)
		}
	}
	bad.ActivityLockTimeout = 0
	if err := bad.Validate(); err == nil || err.Error() != "worker options: BlockTimeout must not be negative, got -1s" {
		t.Fatalf("without the first problem: %v", err)
	}
}

func TestUnregisteredBackoffDoublesToTheCap(t *testing.T) {
	o := Options{}.withDefaults()
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		if got := o.unregisteredDelay(i + 1); got != w*time.Second {
			t.Errorf("attempt %d: delay %s, want %s", i+1, got, w*time.Second)
		}
	}
}

func TestReplayCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newReplayCache(2)
	mk := func(id string) *replay.Executor {
		x, err := replay.NewExecutor(replay.BindOrchestration(engine.OrchestrationFunc(func(*engine.OrchestrationContext, string) (string, error) { return "", nil })),
			replay.ExecutionInfo{InstanceID: id, ExecutionID: 1, Name: "O", Version: "1.0.0"}, nil, replay.ExecutorOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	c.put("a", mk("a"))
	c.put("b", mk("b"))
	if x := c.take("a"); x == nil {
		t.Fatal("a missing")
	} else {
		c.put("a", x) // a is now the most recent
	}
	c.put("c", mk("c")) // evicts b
	if c.take("b") != nil {
		t.Fatal("b should have been evicted")
	}
	if c.take("a") == nil || c.take("c") == nil {
		t.Fatal("a and c should be cached")
	}
	if c.len() != 0 {
		t.Fatalf("take must remove entries, len %d", c.len())
	}
	disabled := newReplayCache(-1)
	disabled.put("x", mk("x"))
	if disabled.take("x") != nil {
		t.Fatal("a disabled cache keeps nothing")
	}
}
