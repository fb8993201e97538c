package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/duroworker/duroworker/queue"
)

// checkEviction refuses a Redis that may evict keys, unless
// Options.AllowEvictingRedis; it only warns when the policy cannot be read.
func (w *Worker) checkEviction(ctx context.Context) error {
	err := w.store.CheckEvictionPolicy(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, queue.ErrEvictingRedis) && w.opts.AllowEvictingRedis:
		w.log.Warn("Redis may evict keys and AllowEvictingRedis is set: evicted keys lose work silently", "err", err)
		return nil
	case errors.Is(err, queue.ErrEvictingRedis):
		return fmt.Errorf("refusing to start: %w (Options.AllowEvictingRedis overrides this check, unsafely)", err)
	case errors.Is(err, queue.ErrEvictionPolicyUnknown) && !strings.Contains(err.Error(), "NOPERM"):
		// CONFIG not implemented (miniredis, some proxies).
		w.log.Info("cannot tell whether Redis may evict keys; make sure maxmemory-policy is noeviction", "err", err)
	case errors.Is(err, queue.ErrEvictionPolicyUnknown):
		w.log.Warn("cannot tell whether Redis may evict keys; make sure maxmemory-policy is noeviction", "err", err)
	default:
		w.log.Warn("checking the Redis eviction policy failed; make sure maxmemory-policy is noeviction", "err", err)
	}
	return nil
}
