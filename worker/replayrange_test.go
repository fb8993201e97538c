package worker

import (
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/queue"
)

// TestNewRefusesAReplayRangeWithoutItsOwnEngine: a worker that runs
// orchestrations pins what it starts to its own engine version, so a
// SupportedReplayVersions range without that version would strand them.
func TestNewRefusesAReplayRangeWithoutItsOwnEngine(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // New does not contact Redis
	defer rdb.Close()
	store := queue.New(rdb, queue.Options{Prefix: "t"})
	orchs := engine.NewOrchestrationRegistry().Register("O", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return in, nil
	}).MustBuild()

	old := capability.MustRange("0.0.0", "0.0.9")
	_, err := New(store, orchs, nil, Options{SupportedReplayVersions: &old})
	if err == nil || !strings.Contains(err.Error(), "SupportedReplayVersions") || !strings.Contains(err.Error(), engine.Version) {
		t.Fatalf("New with range %s: err = %v, want a refusal naming the range and engine %s", old, err, engine.Version)
	}
	wide := capability.MustRange("0.0.0", "99.0.0")
	if _, err := New(store, orchs, nil, Options{SupportedReplayVersions: &wide}); err != nil {
		t.Fatalf("New with range %s: %v", wide, err)
	}
	// An activity-only worker replays nothing: its range does not matter.
	if _, err := New(store, nil, nil, Options{OrchestrationConcurrency: -1, SupportedReplayVersions: &old}); err != nil {
		t.Fatalf("activity-only worker: %v", err)
	}
}

// TestReplaysAnswersAsTheRangeDoes: the per-pin cache of the replay-range
// check answers as ContainsString does, on first and later calls, and stays
// bounded.
func TestReplaysAnswersAsTheRangeDoes(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // New does not contact Redis
	defer rdb.Close()
	orchs := engine.NewOrchestrationRegistry().Register("O", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return in, nil
	}).MustBuild()
	r := capability.MustRange("0.0.0", engine.Version)
	w, err := New(queue.New(rdb, queue.Options{Prefix: "t"}), orchs, nil, Options{SupportedReplayVersions: &r})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for _, pin := range []string{engine.Version, "0.0.1", "99.0.0", "not-a-version", ""} {
			want, err := r.ContainsString(pin)
			want = want && err == nil
			if got := w.replays(pin); got != want {
				t.Fatalf("replays(%q) = %v, want %v", pin, got, want)
			}
		}
	}
	for i := range 2 * maxCachedPins {
		w.replays("1.0." + strconv.Itoa(i))
	}
	if n := w.pinRangeLen.Load(); n > maxCachedPins {
		t.Fatalf("%d cached pins, more than %d", n, maxCachedPins)
	}
}
