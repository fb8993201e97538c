package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// checkPermissions probes, before anything is fetched, the Redis
// permissions that only show up after writes: ack and fetch scripts PUBLISH
// on the orchestration wake-up channel at their end (a denied PUBLISH fails the script
// after it changed the state), and the worker SUBSCRIBEs to them. A denial
// (NOPERM) is returned as an error naming the permission; other errors
// (Redis unreachable or loading) are logged and left to the dispatchers'
// retries.
func (w *Worker) checkPermissions(ctx context.Context) error {
	keys := w.store.Keys()
	channels := []string{keys.WakeOrchChannel()}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, ch := range channels {
		// An empty payload names no bucket: other workers ignore it.
		err := w.store.Publish(ctx, ch, "")
		if isPermissionError(err) {
			return fmt.Errorf("worker start: the Redis user may not PUBLISH to channel %s (%v): "+
				"duroworker's scripts publish wake-ups after their writes; grant the channels &%s* to the user", ch, err, keys.Prefix())
		}
		if err != nil {
			w.log.Warn("checking Redis permissions failed; starting anyway", "err", err)
			return nil
		}
	}
	ps := w.store.Subscribe(ctx, channels...)
	defer ps.Close()
	msg, err := ps.Receive(ctx)
	if isPermissionError(err) {
		return fmt.Errorf("worker start: the Redis user may not SUBSCRIBE to channels %v (%v): "+
			"workers wait for wake-ups on them; grant the channels &%s* to the user", channels, err, keys.Prefix())
	}
	if err != nil {
		w.log.Warn("checking Redis permissions failed; starting anyway", "err", err)
		return nil
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		w.log.Warn("checking Redis permissions: unexpected reply to SUBSCRIBE", "reply", fmt.Sprintf("%T", msg))
	}
	return nil
}
