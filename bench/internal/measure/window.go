package measure

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/result"
)

// Window measures the Redis traffic and the CPU of one phase of a
// workload, the same way for duroworker and for the peers.
type Window struct {
	rdb    *redis.Client
	rts    []*RoundTrips
	rt0    []int64
	sc0    []map[string]int64
	polls  func() int64
	polls0 int64
	before ServerStats
	cpu0   time.Duration
	t0     time.Time
}

// BeginWindow starts a measurement on rdb's server. polls, when not nil,
// returns how many single-command polls the bench itself has sent so far
// (they are subtracted from the server's count); rts are the counters of the
// clients whose round trips are charged to the system measured.
func BeginWindow(ctx context.Context, rdb *redis.Client, polls func() int64, rts ...*RoundTrips) *Window {
	w := &Window{rdb: rdb, rts: rts, polls: polls}
	for _, rt := range rts {
		w.rt0 = append(w.rt0, rt.Count())
		w.sc0 = append(w.sc0, rt.ScriptCalls())
	}
	if polls != nil {
		w.polls0 = polls()
	}
	w.before = ReadServerStats(ctx, rdb)
	w.cpu0 = ProcessCPU()
	w.t0 = time.Now()
	return w
}

// End adds to r, per orchestration (n of them): round trips, server
// commands, Redis CPU and this process's CPU, and with memory the growth
// of Redis's used_memory; it notes the Redis commands that took most of
// the server's time.
func (w *Window) End(ctx context.Context, r *result.Result, n int64, memory bool) {
	cpu := ProcessCPU() - w.cpu0
	elapsed := time.Since(w.t0)
	after := ReadServerStats(ctx, w.rdb)
	if n <= 0 {
		return
	}
	var rt int64
	for i, c := range w.rts {
		rt += c.Count() - w.rt0[i]
	}
	per := func(v float64) float64 { return v / float64(n) }
	r.Add(result.MRoundTrips, "", per(float64(rt)))
	if cpu > 0 {
		r.Add(result.MProcessCPU, "µs", per(float64(cpu)/float64(time.Microsecond)))
	}
	if !w.before.OK || !after.OK {
		return
	}
	var polls int64
	if w.polls != nil {
		polls = w.polls() - w.polls0
	}
	// One command per poll, and the INFO that took the first snapshot.
	r.Add(result.MCommands, "", per(float64(after.TotalCommands-w.before.TotalCommands-polls-1)))
	redisCPU := after.UsedCPU - w.before.UsedCPU
	r.Add(result.MRedisCPU, "µs", per(redisCPU*1e6))
	if elapsed > 0 {
		r.Add(result.MRedisBusy, "%", 100*redisCPU/elapsed.Seconds())
	}
	if memory {
		r.Add(result.MRedisBytes, "B", per(float64(after.UsedMemory-w.before.UsedMemory)))
	}
	r.Redis = w.cost(after, n, polls)
	if top := TopCommands(w.before, after, n, 4); top != "" {
		r.Note("top Redis commands by server time (calls/orch, µs/orch): %s", top)
	}
}

// TopCommands lists the k commands that took most server time between two
// snapshots, leaving out the bench's own INFO and HMGET polls.
func TopCommands(before, after ServerStats, n int64, k int) string {
	type row struct {
		name  string
		calls int64
		usec  int64
	}
	var rows []row
	for name, a := range after.Commands {
		b := before.Commands[name]
		if name == "info" || a.Usec-b.Usec <= 0 {
			continue
		}
		rows = append(rows, row{name, a.Calls - b.Calls, a.Usec - b.Usec})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].usec > rows[j].usec })
	var parts []string
	for i := 0; i < len(rows) && i < k; i++ {
		parts = append(parts, fmt.Sprintf("%s %.1f/%.0f", rows[i].name, float64(rows[i].calls)/float64(n), float64(rows[i].usec)/float64(n)))
	}
	return strings.Join(parts, ", ")
}

// cost is the Redis cost of the window: the commandstats deltas (the
// INFO that took the first snapshot left out) and the scripts the
// counted clients called.
func (w *Window) cost(after ServerStats, n, polls int64) *result.RedisCost {
	c := &result.RedisCost{Per: n, Polls: polls}
	for name, a := range after.Commands {
		b := w.before.Commands[name]
		d := result.CommandCost{Name: name, Calls: a.Calls - b.Calls, Usec: a.Usec - b.Usec}
		if name == "info" {
			d.Calls-- // the snapshot that began the window
		}
		if d.Calls <= 0 {
			continue
		}
		c.Commands = append(c.Commands, d)
	}
	sort.Slice(c.Commands, func(i, j int) bool {
		if c.Commands[i].Usec != c.Commands[j].Usec {
			return c.Commands[i].Usec > c.Commands[j].Usec
		}
		return c.Commands[i].Name < c.Commands[j].Name
	})
	calls := map[string]int64{}
	for i, rt := range w.rts {
		for sha, v := range rt.ScriptCalls() {
			calls[sha] += v - w.sc0[i][sha]
		}
	}
	for sha, v := range calls {
		if v > 0 {
			c.Scripts = append(c.Scripts, result.ScriptCost{SHA: sha, Name: ScriptName(sha), Calls: v})
		}
	}
	sort.Slice(c.Scripts, func(i, j int) bool {
		if c.Scripts[i].Calls != c.Scripts[j].Calls {
			return c.Scripts[i].Calls > c.Scripts[j].Calls
		}
		return c.Scripts[i].SHA < c.Scripts[j].SHA
	})
	return c
}
