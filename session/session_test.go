package session

import (
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/queue"
)

func TestOptionsWithDefaults(t *testing.T) {
	o, err := Options{Owner: "n1"}.WithDefaults(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if o.LockTimeout != DefaultLockTimeout || o.IdleTimeout != DefaultIdleTimeout || o.MaxSessions != DefaultMaxSessions || !o.Enabled() {
		t.Fatalf("defaults not applied: %+v", o)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no owner", Options{}, "owner is empty"},
		{"idle below activity lock", Options{Owner: "n", IdleTimeout: 10 * time.Second}, "must exceed ActivityLockTimeout"},
		{"tiny lease", Options{Owner: "n", LockTimeout: time.Millisecond}, "at least 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.opts.WithDefaults(30 * time.Second); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if off, _ := (Options{Owner: "n", MaxSessions: -1}).WithDefaults(time.Second); off.Enabled() {
		t.Fatal("negative MaxSessions must disable sessions")
	}
}

func TestFetchFieldsAddTheNodeBucketOnlyWhenEnabled(t *testing.T) {
	on, _ := Options{Owner: "n1"}.WithDefaults(time.Second)
	req := queue.FetchWorkRequest{Buckets: []string{"a:X"}}
	NewManager(nil, on).FetchFields(&req)
	if req.SessionOwner != "n1" || req.MaxSessions != DefaultMaxSessions || req.Buckets[len(req.Buckets)-1] != "s:n1" {
		t.Fatalf("enabled: %+v", req)
	}
	off, _ := Options{Owner: "n1", MaxSessions: -1}.WithDefaults(time.Second)
	req = queue.FetchWorkRequest{Buckets: []string{"a:X"}}
	NewManager(nil, off).FetchFields(&req)
	if req.SessionOwner != "" || len(req.Buckets) != 1 {
		t.Fatalf("disabled: %+v", req)
	}
}
