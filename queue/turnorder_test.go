package queue_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// TestBacklogTurnOrderCounts is a measurement, not a check of speed: it
// replays a backlog of one-activity orchestrations against the store's
// scripts on miniredis with a virtual clock, so that the counts depend only
// on how the ready buckets order turns (queue.TurnLead), not on the
// machine. Starts arrive at a fixed rate per virtual millisecond into one
// bucket; the "worker" runs one turn per virtual millisecond (fetch Max 1,
// then ack), and each start turn's activity completes at once (its
// completion is delivered to the instance). It logs, at checkpoints,
// starts made, start turns run and orchestrations completed. Run with
// DW_COUNT=1:
//
//	DW_COUNT=1 go test -count=1 -run TestBacklogTurnOrderCounts -v ./queue/
func TestBacklogTurnOrderCounts(t *testing.T) {
	if os.Getenv("DW_COUNT") == "" {
		t.Skip("measurement: set DW_COUNT=1 to run")
	}
	for _, sc := range []struct {
		name        string
		n, perMilli int // starts, and how many arrive per virtual ms
		every       int // log every this many virtual ms
	}{
		{"burst 2000 (all in 0.2 s, drain 4 s)", 2000, 10, 500},
		{"backlog 6000 (all in 1.2 s, drain 12 s)", 6000, 5, 1000},
	} {
		t.Run(fmt.Sprint(sc.n), func(t *testing.T) {
			m, rdb := redistest.StartMini(t)
			now := time.UnixMilli(1_700_000_000_000)
			m.SetTime(now)
			ctx := context.Background()
			s := queue.New(rdb, queue.Options{Prefix: "order"})
			made, startTurns, completed, req := 0, 0, 0, 0
			var lines []string
			for ms := 1; completed < sc.n; ms++ {
				for i := 0; i < sc.perMilli && made < sc.n; i++ {
					id := fmt.Sprintf("i%d", made)
					if err := s.CreateInstance(ctx, queue.CreateRequest{InstanceID: id, Name: "one", Bucket: "o:one", Message: "start"}); err != nil {
						t.Fatal(err)
					}
					made++
				}
				req++
				res, err := s.FetchOrchestrations(ctx, queue.FetchOrchestrationsRequest{RequestID: fmt.Sprintf("r%d", req),
					Buckets: []string{"o:one"}, Max: 1, LockTimeout: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range res.Items {
					if it.Messages[0] == "start" {
						startTurns++
						if err := s.AckOrchestration(ctx, queue.OrchestrationAck{InstanceID: it.InstanceID, Token: it.Token,
							ExecutionID: 1, Status: queue.StatusRunning, Activities: []queue.WorkItem{{Bucket: "a:x", Body: "b"}}}); err != nil {
							t.Fatal(err)
						}
						req++
						w, err := s.FetchWork(ctx, queue.FetchWorkRequest{RequestID: fmt.Sprintf("r%d", req), Buckets: []string{"a:x"}, Max: 1, LockTimeout: time.Minute})
						if err != nil || len(w.Items) != 1 {
							t.Fatalf("fetch work: %v %v", w.Items, err)
						}
						if err := s.AckWork(ctx, w.Items[0].ID, w.Items[0].Token, "done"); err != nil {
							t.Fatal(err)
						}
					} else {
						completed++
						if err := s.AckOrchestration(ctx, queue.OrchestrationAck{InstanceID: it.InstanceID, Token: it.Token,
							ExecutionID: 1, Status: queue.StatusCompleted}); err != nil {
							t.Fatal(err)
						}
					}
				}
				if ms%sc.every == 0 || completed == sc.n {
					lines = append(lines, fmt.Sprintf("%5.1fs made %d, started %d, completed %d", float64(ms)/1000, made, startTurns, completed))
				}
				now = now.Add(time.Millisecond)
				m.SetTime(now)
			}
			t.Logf("%s, turn lead %v:\n  %s", sc.name, queue.TurnLead, strings.Join(lines, "\n  "))
		})
	}
}
