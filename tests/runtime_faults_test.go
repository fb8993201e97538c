package tests

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers (a log sink).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestActivityPanicStoresTheMessageNotTheStack: an activity panic fails the
// activity with the panic message; the goroutine stack (with this worker's
// file paths) goes to the worker's log only, never to history or clients.
func TestActivityPanicStoresTheMessageNotTheStack(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("CallsPanicky", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Panicky", in).Get()
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Panicky", func(ctx *engine.ActivityContext, in string) (string, error) {
			panic("boom " + in)
		}).MustBuild()
		var logs syncBuffer
		e.startWorker(orchs, acts, worker.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		ctx := context.Background()
		if err := e.client.Start(ctx, "p", "CallsPanicky", "x"); err != nil {
			t.Fatal(err)
		}
		st := e.wait("p")
		if st.State != client.StateFailed || st.Failure == nil {
			t.Fatalf("status %+v", st)
		}
		msg := st.Failure.Error()
		if !strings.Contains(msg, "activity panicked: boom x") {
			t.Fatalf("failure %q does not carry the panic message", msg)
		}
		hist, err := e.store.History(ctx, "p", 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, where := range append([]string{msg, st.Output}, hist...) {
			if strings.Contains(where, "goroutine ") || strings.Contains(where, ".go:") {
				t.Fatalf("stack trace stored: %q", where)
			}
		}
		if l := logs.String(); !strings.Contains(l, "activity panicked") || !strings.Contains(l, "runtime_faults_test.go") {
			t.Fatalf("the worker log lacks the panic's stack:\n%s", l)
		}
	})
}

// TestUnreadableOrEmptyHistoryIsPoisoned: an instance whose history is
// missing (empty) or unreadable (a key of the wrong type) counts every
// attempt and is poisoned after MaxAttempts, with a dead letter, instead of
// being retried forever.
func TestUnreadableOrEmptyHistoryIsPoisoned(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Waiter", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.WaitForEvent("go").Get()
		}).MustBuild()
		// The same node id both times: in sticky mode the second worker is
		// the cache owner, so the fetch omits the history and the worker
		// reads it itself.
		opts := fastPoison
		opts.NodeID = "n1"
		w := e.startWorker(orchs, nil, opts)
		ctx := context.Background()
		ids := []string{"empty", "unreadable"}
		for _, id := range ids {
			if err := e.client.Start(ctx, id, "Waiter", ""); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range ids {
			eventually(t, 10*time.Second, id+" running", func() bool {
				st, _ := e.client.Status(ctx, id)
				return st.State == client.StateRunning
			})
		}
		_ = w.Shutdown(ctx)
		k := e.store.Keys()
		if err := e.rdb.Del(ctx, k.HistoryKey("empty", 1)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.Del(ctx, k.HistoryKey("unreadable", 1)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.Set(ctx, k.HistoryKey("unreadable", 1), "not a list", 0).Err(); err != nil {
			t.Fatal(err)
		}
		e.startWorker(orchs, nil, opts)
		for _, id := range ids {
			if err := e.client.RaiseEvent(ctx, id, "go", "x"); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range ids {
			st := e.wait(id)
			if st.State != client.StateFailed || !engine.IsPoison(st.Failure) || st.Failure.Attempts != 4 || st.Failure.MaxAttempts != 3 {
				t.Fatalf("%s: %+v", id, st.Failure)
			}
		}
		dead, err := e.store.DeadLetters(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, d := range dead {
			got[d.InstanceID]++
		}
		for _, id := range ids {
			if got[id] != 1 {
				t.Fatalf("dead letters %+v: want one for %s", dead, id)
			}
		}
	})
}

// flakyAcks is a go-redis hook that makes the acks of a test fail the way
// they do when Redis restarts or a connection drops. Script calls are
// classed by a marker in their arguments (the first marker found wins); the
// first call of a class is refused before it is sent (connection refused),
// the second is sent, applied by Redis, and its reply lost (connection
// reset); later calls go through.
type flakyAcks struct {
	commandHook
	markers []string
	mu      sync.Mutex
	calls   map[string]int
}

// commandHook passes dials and pipelines through: the fault hooks here
// act on single commands (ProcessHook) only.
type commandHook struct{}

func (commandHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (commandHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *flakyAcks) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		class := ""
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			for _, m := range h.markers {
				for _, a := range cmd.Args() {
					if s, ok := a.(string); ok && strings.Contains(s, m) {
						class = m
						break
					}
				}
				if class != "" {
					break
				}
			}
		}
		if class == "" {
			return next(ctx, cmd)
		}
		h.mu.Lock()
		h.calls[class]++
		n := h.calls[class]
		h.mu.Unlock()
		switch n {
		case 1:
			err := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			cmd.SetErr(err)
			return err
		case 2:
			if err := next(ctx, cmd); err != nil {
				return err
			}
			err := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *flakyAcks) count(class string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[class]
}

// TestFailedAcksAreRetried: turn and activity acks that fail with a
// transient error (connection refused before sending; a reply lost after
// Redis applied them) are retried until they succeed or are recognised as
// applied: no activity runs again and no turn is run twice because of a
// dropped ack.
func TestFailedAcksAreRetried(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, base *redis.Client, b redistest.Backend) {
		for _, sticky := range []bool{true, false} {
			t.Run(fmt.Sprintf("sticky=%v", sticky), func(t *testing.T) {
				_ = base.FlushDB(context.Background()).Err()
				hook := &flakyAcks{markers: []string{"TURNMARK", "ACTMARK"}, calls: map[string]int{}}
				rdb := redis.NewClient(base.Options())
				rdb.AddHook(hook)
				t.Cleanup(func() { _ = rdb.Close() })
				e := newEnv(t, rdb, sticky)
				var runs, finals atomic.Int32
				orchs := engine.NewOrchestrationRegistry().Register("Once", func(ctx *engine.OrchestrationContext, in string) (string, error) {
					out, err := ctx.ScheduleActivity("Once", in).Get()
					if err != nil {
						return "", err
					}
					if !ctx.IsReplaying() {
						finals.Add(1)
					}
					return "TURNMARK " + out, nil
				}).MustBuild()
				acts := engine.NewActivityRegistry().Register("Once", func(ctx *engine.ActivityContext, in string) (string, error) {
					runs.Add(1)
					return "ACTMARK " + in, nil
				}).MustBuild()
				e.startWorker(orchs, acts, worker.Options{ActivityLockTimeout: 3 * time.Second, OrchestrationLockTimeout: 3 * time.Second})
				ctx := context.Background()
				if err := e.client.Start(ctx, "once", "Once", "x"); err != nil {
					t.Fatal(err)
				}
				st := e.wait("once")
				if st.State != client.StateCompleted || st.Output != "TURNMARK ACTMARK x" {
					t.Fatalf("status %+v", st)
				}
				time.Sleep(4 * time.Second) // past the locks: a dropped ack would show as a re-run
				if runs.Load() != 1 || finals.Load() != 1 {
					t.Fatalf("activity ran %d times, final turn ran %d times; want once each", runs.Load(), finals.Load())
				}
				if hook.count("TURNMARK") < 3 || hook.count("ACTMARK") < 3 {
					t.Fatalf("ack calls: turn %d, activity %d; want a refused one, a lost reply and a retry each", hook.count("TURNMARK"), hook.count("ACTMARK"))
				}
			})
		}
	})
}

// TestShutdownWithdrawsTheNodeBeforeWaiting: Shutdown follows the order of
// docs/operations.md: it stops fetching and withdraws the node first, then
// waits for running work (which keeps its lock and is acknowledged).
func TestShutdownWithdrawsTheNodeBeforeWaiting(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		orchs := engine.NewOrchestrationRegistry().Register("Slow", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Slow", in).Get()
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Slow", func(ctx *engine.ActivityContext, in string) (string, error) {
			started <- struct{}{}
			<-release
			return in, nil
		}).MustBuild()
		w := e.startWorker(orchs, acts, worker.Options{NodeID: "leaving"})
		ctx := context.Background()
		if err := e.client.Start(ctx, "s", "Slow", "done"); err != nil {
			t.Fatal(err)
		}
		<-started
		if _, err := e.rdb.ZScore(ctx, e.store.Keys().NodesKey(), "leaving").Result(); err != nil {
			t.Fatalf("the running node is not advertised: %v", err)
		}
		shut := make(chan error, 1)
		go func() {
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			shut <- w.Shutdown(sctx)
		}()
		eventually(t, 10*time.Second, "node withdrawn while its activity still runs", func() bool {
			return e.rdb.ZScore(ctx, e.store.Keys().NodesKey(), "leaving").Err() == redis.Nil
		})
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned (%v) before the running activity finished", err)
		default:
		}
		close(release)
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		e.startWorker(orchs, acts, worker.Options{})
		if st := e.wait("s"); st.Output != "done" {
			t.Fatalf("%+v", st)
		}
	})
}

// TestSIGKILLedNodesWorkIsReclaimedBeforeItsLock kills a worker process
// while its activity runs under a 30 s lock and starts another, which runs
// the activity again long before the lock would have expired:
//   - replacement: a new node id, started only once the killed node's
//     liveness (three heartbeats) has lapsed; live for that long in turn,
//     it reclaims the dead node's lock;
//   - restart: the same node id at once (as a Kubernetes pod keeps its
//     name), before the node lapses, so that no dead-node reclaim applies:
//     the new process waits for the old advertisement to lapse, then takes
//     the earlier process's locks back as it starts.
func TestSIGKILLedNodesWorkIsReclaimedBeforeItsLock(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	for _, tc := range []struct {
		name, next string
		waitLapse  bool
	}{
		{name: "replacement", next: "node-b", waitLapse: true},
		{name: "restart", next: "node-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const lock = 30 * time.Second
			k := killMidActivity(t, "reclaim", lock, "1s")
			ctx := context.Background()
			if tc.waitLapse {
				eventually(t, 10*time.Second, "node-a's liveness lapsed", func() bool {
					score, err := k.rdb.ZScore(ctx, k.store.Keys().NodesKey(), "node-a").Result()
					now, terr := k.rdb.Time(ctx).Result()
					return err == nil && terr == nil && score < float64(now.UnixMilli())
				})
			}
			startProc(t, k.srv, "reclaim", tc.next, "-activity-lock", lock.String())
			// The only assertion on time: the work comes back before the
			// lock timeout (from the kill, which is after the lock was taken).
			wctx, cancel := context.WithDeadline(ctx, k.killed.Add(lock-2*time.Second))
			defer cancel()
			st, err := k.client.Wait(wctx, "slow")
			if err != nil || st.State != client.StateCompleted || st.Output != "slept 1s on "+tc.next {
				t.Fatalf("not redelivered before the %s lock timeout: %+v %v", lock, st, err)
			}
			got := k.runs(t)
			if want := "node-a:slow:1 " + tc.next + ":slow:2"; strings.Join(got, " ") != want {
				t.Fatalf("activity runs %v, want %s", got, want)
			}
		})
	}
}

// TestRestartedNodeTakesBackItsUnlockedReads: a process that stopped
// between a blocking read and the fetch that locks what it read leaves the
// entry pending for its node in the stream's group, where only the
// 5-minute idle reclaim would find it (the node is not dead: it is back).
// The first fetch of a worker with the same NodeID locks it at once, at
// attempt 1 (it never ran).
func TestRestartedNodeTakesBackItsUnlockedReads(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Echo", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Echo", in).Get()
		}).MustBuild()
		var attempts atomic.Int32
		acts := engine.NewActivityRegistry().Register("Echo", func(ctx *engine.ActivityContext, in string) (string, error) {
			attempts.Store(int32(ctx.Attempt()))
			return in, nil
		}).MustBuild()
		e.startWorker(orchs, nil, worker.Options{NodeID: "orchestrator", Tags: worker.NoActivities()})
		ctx := context.Background()
		if err := e.client.Start(ctx, "r", "Echo", "back"); err != nil {
			t.Fatal(err)
		}
		// The earlier process of node "restarted" reads the activity and stops.
		var read []queue.ReadEntry
		eventually(t, 20*time.Second, "the activity read by the earlier process", func() bool {
			var err error
			read, err = e.store.ReadWork(ctx, queue.ReadWorkRequest{Buckets: []string{capability.ActivityBucket("Echo")},
				NodeID: "restarted", Count: 1, Block: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return len(read) == 1
		})
		e.startWorker(nil, acts, worker.Options{NodeID: "restarted", ActivityLockTimeout: 4 * time.Minute})
		if st := e.wait("r"); st.State != client.StateCompleted || st.Output != "back" {
			t.Fatalf("status %+v", st)
		}
		if n := attempts.Load(); n != 1 {
			t.Fatalf("the recovered activity ran at attempt %d, want 1", n)
		}
	})
}

// lostReplies is a go-redis hook that loses (after Redis applied it) the
// reply of the first blocking work read that delivered entries, and of the
// first orchestration fetch and the first work fetch that locked
// something: the calls fail as when a connection drops mid-reply.
type lostReplies struct {
	commandHook
	mu   sync.Mutex
	lost map[string]bool
}

func (h *lostReplies) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := next(ctx, cmd); err != nil {
			return err
		}
		class := ""
		switch c := cmd.(type) {
		case *redis.XStreamSliceCmd:
			if cmd.Name() == "xreadgroup" && len(c.Val()) > 0 {
				class = "read"
			}
		case *redis.Cmd:
			if reply, err := c.Slice(); err == nil && len(reply) > 1 && (cmd.Name() == "evalsha" || cmd.Name() == "eval") {
				for _, a := range cmd.Args() {
					if s, ok := a.(string); ok && (strings.Contains(s, ":fr:o:") || strings.Contains(s, ":fr:w:")) {
						class = s[strings.Index(s, ":fr:")+1 : strings.Index(s, ":fr:")+5]
						break
					}
				}
			}
		}
		if class == "" {
			return nil
		}
		h.mu.Lock()
		first := !h.lost[class]
		h.lost[class] = true
		h.mu.Unlock()
		if !first {
			return nil
		}
		err := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		cmd.SetErr(err)
		return err
	}
}

func (h *lostReplies) classes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for c := range h.lost {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// TestLostReadAndFetchRepliesStrandNothing: when the reply of a blocking
// work read or of a fetch is lost after Redis applied the call, the work it
// delivered or locked is run at once, not after its lock or idle time (4
// minutes here): the worker recovers its node's unlocked reads on the next
// fetch, and retries a failed fetch under the same request id, which
// answers with what the lost call locked.
func TestLostReadAndFetchRepliesStrandNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.Start(t)
	rdb := redis.NewClient(srv.Client(t).Options())
	hook := &lostReplies{lost: map[string]bool{}}
	rdb.AddHook(hook)
	t.Cleanup(func() { _ = rdb.Close() })
	e := newEnv(t, rdb, true)
	orchs := engine.NewOrchestrationRegistry().Register("Echo", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("Echo", in).Get()
	}).MustBuild()
	var runs atomic.Int32
	acts := engine.NewActivityRegistry().Register("Echo", func(ctx *engine.ActivityContext, in string) (string, error) {
		runs.Add(1)
		return in, nil
	}).MustBuild()
	// Separate nodes and no eager dispatch: every turn and activity goes
	// through a fetch, and the activity through a blocking read first.
	const lock = 4 * time.Minute
	e.startWorker(orchs, nil, worker.Options{NodeID: "orchestrator", Tags: worker.NoActivities(),
		OrchestrationLockTimeout: lock, DisableEagerDispatch: true})
	e.startWorker(nil, acts, worker.Options{NodeID: "runner", ActivityLockTimeout: lock, DisableEagerDispatch: true})
	ctx := context.Background()
	if err := e.client.Start(ctx, "lost", "Echo", "x"); err != nil {
		t.Fatal(err)
	}
	if st := e.wait("lost"); st.State != client.StateCompleted || st.Output != "x" {
		t.Fatalf("status %+v", st)
	}
	if got := hook.classes(); !slices.Equal(got, []string{"fr:o", "fr:w", "read"}) {
		t.Fatalf("lost replies of %v; want an orchestration fetch, a work fetch and a read", got)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the activity ran %d times, want 1", n)
	}
}

// TestLiveNodeRecoversAnEntryAnotherReaderTookInItsName: an entry that a
// read other than the worker's own delivered to the worker's node (a read
// an earlier process left blocked in Redis, delivering after the new
// process started) is locked by the worker's periodic recovery (once every
// NodeHeartbeat), not left for the 5-minute idle reclaim.
func TestLiveNodeRecoversAnEntryAnotherReaderTookInItsName(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		release, holding := make(chan struct{}), make(chan struct{}, 1)
		orchs := engine.NewOrchestrationRegistry().Register("Call", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity(in, in).Get()
		}).MustBuild()
		acts := engine.NewActivityRegistry().
			Register("Hold", func(ctx *engine.ActivityContext, in string) (string, error) {
				holding <- struct{}{}
				<-release
				return in, nil
			}).
			Register("Echo", func(ctx *engine.ActivityContext, in string) (string, error) { return in, nil }).
			MustBuild()
		e.startWorker(orchs, nil, worker.Options{NodeID: "orchestrator", Tags: worker.NoActivities()})
		e.startWorker(nil, acts, worker.Options{NodeID: "n1", ActivityConcurrency: 1, NodeHeartbeat: 100 * time.Millisecond})
		ctx := context.Background()
		if err := e.client.Start(ctx, "hold", "Call", "Hold"); err != nil {
			t.Fatal(err)
		}
		<-holding // n1's only slot is busy: it reads nothing now
		if err := e.client.Start(ctx, "echo", "Call", "Echo"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "Echo read in n1's name by another reader", func() bool {
			read, err := e.store.ReadWork(ctx, queue.ReadWorkRequest{Buckets: []string{capability.ActivityBucket("Echo")},
				NodeID: "n1", Count: 1, Block: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return len(read) == 1
		})
		close(release)
		if st := e.wait("echo"); st.State != client.StateCompleted || st.Output != "Echo" {
			t.Fatalf("status %+v", st)
		}
		if st := e.wait("hold"); st.Output != "Hold" {
			t.Fatalf("status %+v", st)
		}
	})
}
