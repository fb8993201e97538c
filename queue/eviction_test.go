package queue

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/redistest"
)

// TestCheckEvictionPolicy: a Redis that may evict keys is refused; the
// default noeviction passes; a Redis that does not answer CONFIG
// (miniredis, an ACL without CONFIG) is "unknown", not refused.
func TestCheckEvictionPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	srv := redistest.StartWith(t, redistest.Config{Args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"}})
	rdb := srv.Client(t)
	s := New(rdb, Options{Prefix: "evict"})
	if err := s.CheckEvictionPolicy(ctx); !errors.Is(err, ErrEvictingRedis) {
		t.Errorf("allkeys-lru: %v, want ErrEvictingRedis", err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "volatile-ttl").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckEvictionPolicy(ctx); !errors.Is(err, ErrEvictingRedis) {
		t.Errorf("volatile-ttl: %v, want ErrEvictingRedis", err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckEvictionPolicy(ctx); err != nil {
		t.Errorf("noeviction: %v", err)
	}

	// An ACL user without CONFIG: unknown, not refused.
	if err := rdb.Do(ctx, "ACL", "SETUSER", "noconf", "on", ">pw", "~*", "&*", "+@all", "-config").Err(); err != nil {
		t.Fatal(err)
	}
	limited := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "noconf", Password: "pw"})
	t.Cleanup(func() { _ = limited.Close() })
	if err := New(limited, Options{Prefix: "evict"}).CheckEvictionPolicy(ctx); !errors.Is(err, ErrEvictionPolicyUnknown) || errors.Is(err, ErrEvictingRedis) {
		t.Errorf("CONFIG denied: %v, want ErrEvictionPolicyUnknown", err)
	}

	_, mini := redistest.StartMini(t)
	if err := New(mini, Options{}).CheckEvictionPolicy(ctx); !errors.Is(err, ErrEvictionPolicyUnknown) {
		t.Errorf("miniredis: %v, want ErrEvictionPolicyUnknown", err)
	}
}
