package worker

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// loseReplies makes the next failures pipelines that carry an EVALSHA lose
// their replies: the commands run, the caller gets io.EOF (a transient
// error) for each of them.
type loseReplies struct {
	failures atomic.Int32
	lost     atomic.Int64 // commands whose replies were lost
}

func (h *loseReplies) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *loseReplies) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *loseReplies) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if cmds[0].Name() == "evalsha" && h.failures.Add(-1) >= 0 {
			h.lost.Add(int64(len(cmds)))
			for _, c := range cmds {
				c.SetErr(io.EOF)
			}
			return io.EOF
		}
		return err
	}
}

// TestAcksFinishingTogetherShareRoundTrips: 100 activities of one fan-out
// wait behind a gate and finish together; their acks (and the turn acks
// that follow) go to Redis in fewer round trips than acks, counted by the
// batcher (no timing involved: while one round trip is in flight the
// others queue). With AckBatchSize 1 (the control) every ack is a round
// trip of its own. With lost replies, the first batch's acks are retried
// one by one as transient failures and every orchestration still completes.
func TestAcksFinishingTogetherShareRoundTrips(t *testing.T) {
	const n = 100
	for _, tc := range []struct {
		name      string
		batchSize int
		lose      int32
	}{{"batched", 0, 0}, {"unbatched", 1, 0}, {"batched/lost-replies", 0, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			rdb := srv.Client(t)
			lose := &loseReplies{}
			rdb.AddHook(lose)
			store := queue.New(rdb, queue.Options{Prefix: "acks"})
			c := client.New(store)
			defer c.Close()
			gate := make(chan struct{})
			var arrived atomic.Int32
			acts := engine.NewActivityRegistry().Register("Gate", func(ctx *engine.ActivityContext, in string) (string, error) {
				arrived.Add(1)
				<-gate
				return in, nil
			}).MustBuild()
			orchs := engine.NewOrchestrationRegistry().Register("Fan", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				fs := make([]*engine.Future[string], n)
				for i := range fs {
					fs[i] = ctx.ScheduleActivity("Gate", fmt.Sprint(i))
				}
				out, err := engine.JoinAll(ctx, fs)
				return strings.Join(out, ","), err
			}).MustBuild()
			w, err := New(store, orchs, acts, Options{Logger: quietLogger(), ActivityConcurrency: n, AckBatchSize: tc.batchSize})
			if err != nil {
				t.Fatal(err)
			}
			var items, trips atomic.Int64
			w.acks.onSend = func(k int) {
				items.Add(int64(k))
				trips.Add(1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := w.Start(ctx); err != nil {
				t.Fatal(err)
			}
			shut := false
			defer func() {
				if !shut {
					_ = w.Shutdown(context.Background())
				}
			}()
			if err := c.Start(ctx, "fan", "Fan", ""); err != nil {
				t.Fatal(err)
			}
			for arrived.Load() < n {
				select {
				case <-ctx.Done():
					t.Fatalf("only %d of %d activities started", arrived.Load(), n)
				case <-time.After(10 * time.Millisecond):
				}
			}
			lose.failures.Store(tc.lose)
			items.Store(0)
			trips.Store(0)
			close(gate)
			st, err := c.Wait(ctx, "fan")
			if err != nil || st.State != client.StateCompleted {
				t.Fatalf("fan: %+v %v", st, err)
			}
			if got := strings.Count(st.Output, ",") + 1; got != n {
				t.Fatalf("fan output has %d results, want %d", got, n)
			}
			// Shutdown waits for the acks still retried
			shut = true
			if err := w.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			acks, rts := items.Load(), trips.Load()
			t.Logf("%d acks in %d round trips", acks, rts)
			if acks < n {
				t.Fatalf("%d acks counted, want at least %d", acks, n)
			}
			if tc.batchSize == 1 {
				if rts != acks {
					t.Fatalf("unbatched: %d round trips for %d acks, want one each", rts, acks)
				}
			} else if rts >= acks {
				t.Fatalf("%d round trips for %d acks: nothing was batched", rts, acks)
			}
			if lost := lose.lost.Load(); tc.lose > 0 && (lost == 0 || acks < n+lost) {
				t.Fatalf("%d acks sent, %d replies lost: want the lost ones resent", acks, lost)
			}
		})
	}
}
