package main

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/duroworker/duroworker/session"
	"github.com/duroworker/duroworker/worker"
)

// TestWorkerFlagsFailAsWorkerOptionsDo: a bad value given as a flag of
// `duroworker worker` gives exactly the message worker.Options.Validate (and
// so worker.New) gives for it.
func TestWorkerFlagsFailAsWorkerOptionsDo(t *testing.T) {
	for _, c := range []struct {
		name  string
		flags workerOptions
		opts  worker.Options
	}{
		{"negative activity lock", workerOptions{ActivityLock: -time.Second}, worker.Options{ActivityLockTimeout: -time.Second}},
		{"tiny orchestration lock", workerOptions{OrchestrationLock: time.Millisecond}, worker.Options{OrchestrationLockTimeout: time.Millisecond}},
		{"negative attempts", workerOptions{MaxAttempts: -1}, worker.Options{MaxAttempts: -1}},
		{"negative block timeout", workerOptions{BlockTimeout: -time.Second}, worker.Options{BlockTimeout: -time.Second}},
		{"activity lock beyond the session idle timeout", workerOptions{ActivityLock: time.Hour}, worker.Options{ActivityLockTimeout: time.Hour}},
		{"several at once", workerOptions{BlockTimeout: -time.Second, MaxAttempts: -1, ActivityLock: -time.Second},
			worker.Options{BlockTimeout: -time.Second, MaxAttempts: -1, ActivityLockTimeout: -time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.flags.Tags, c.flags.ShutdownTimeout = "default", time.Second
			_, got := c.flags.workerSettings(nil)
			want := c.opts.Validate()
			if got == nil || want == nil || got.Error() != want.Error() {
				t.Fatalf("flags: %v\noptions: %v\nwant the same error", got, want)
			}
		})
	}
	wo, err := (&workerOptions{Tags: "default", ShutdownTimeout: time.Second, MaxSessions: -1}).workerSettings(nil)
	if err != nil || wo.Sessions != (session.Options{MaxSessions: -1}) {
		t.Fatalf("valid flags: %+v, %v", wo.Sessions, err)
	}
}

// TestNewInstanceIDIsARandomUUID: `duroworker start` without --id names the
// instance with a random RFC 4122 version 4 UUID, as before it used
// google/uuid.
func TestNewInstanceIDIsARandomUUID(t *testing.T) {
	a, b := newInstanceID(), newInstanceID()
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || len(a) != 36 || a == b {
		t.Fatalf("newInstanceID() = %q, %q (%v)", a, b, err)
	}
}
