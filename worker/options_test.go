package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
)

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
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
		{"negative lock", Options{ActivityLockTimeout: -time.Second}, "ActivityLockTimeout must not be negative"},
		{"tiny lock", Options{OrchestrationLockTimeout: time.Millisecond}, "at least 100ms"},
		{"negative attempts", Options{MaxAttempts: -1}, "MaxAttempts must be at least 1"},
		{"backoff max below base", Options{UnregisteredBackoffBase: time.Minute, UnregisteredBackoffMax: time.Second}, "below"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.opts.withDefaults()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUnregisteredBackoffDoublesToTheCap(t *testing.T) {
	o, _ := Options{}.withDefaults()
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
