package queue

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// loaderBody writes instances in bulk through create_instance, the create
// path of create.lua, and for mode "Completed" makes each one look as an
// ending ack leaves it: status Completed at utime ARGV[2], one execution
// record with ARGV[3] history events, inbox and ready entry gone, counters
// and indices moved. Mode "Execs" gives the single id ARGV[4] ARGV[3]
// executions, all but the last ContinuedAsNew, each with two events.
// ARGV[4..] are the ids. checkIndices verifies what it writes.
const loaderBody = `
local mode, ended, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local woken = {}
local function finish(id, exec, status, nev)
  local hk = k_hist(id, exec)
  for j = 1, nev do redis.call('RPUSH', hk, 'e' .. j) end
  redis.call('HSET', k_execs(id), tostring(exec), exec_record(status, now, ended, nev), exec .. ':out', 'ok')
  redis.call('HINCRBY', K_STATS, 'executions', 1)
  redis.call('HINCRBY', K_STATS, 'events', nev)
end
for i = 4, #ARGV do
  local id = ARGV[i]
  create_instance(id, 'load', '1.0.0', '', 'o:load', 'start', now, woken)
  if mode ~= 'Pending' then
    local execs = 1
    if mode == 'Execs' then execs = n end
    for x = 1, execs - 1 do finish(id, x, 'ContinuedAsNew', 2) end
    local nev = n
    if mode == 'Execs' then nev = 2 end
    finish(id, execs, 'Completed', nev)
    redis.call('HSET', k_inst(id), 'status', 'Completed', 'exec', execs, 'out', 'ok', 'utime', ended, 'ver', '1.0.0')
    redis.call('ZREM', k_ready('o:load'), id)
    redis.call('DEL', k_inbox(id))
    stat_move('Pending', 'Completed', id)
  end
end
return #ARGV - 3
`

// scaleWork records the work and the number of calls of each management
// script through Store.onWork.
type scaleWork struct {
	mu    sync.Mutex
	calls map[string]int
	max   map[string]int
	over  []string
	bound map[string]int
}

func (w *scaleWork) hook(script string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[script]++
	w.max[script] = max(w.max[script], n)
	if b, ok := w.bound[script]; ok && n > b {
		w.over = append(w.over, fmt.Sprintf("%s did %d units of work in one call, budget %d", script, n, b))
	}
}

// runManagementAtScale loads n instances (every tenth Pending, the others
// Completed: the first half of those long ago, the rest now) and one
// instance with execs executions, then lists with a filter that matches
// nothing, pages through a filtered listing, bulk-deletes bulkLimit old
// instances and prunes the big instance, while a bystander pings. It
// checks the results exactly, and that every script call stayed within
// its work budget; it logs the bystander's worst latency and the scripts'
// times from SLOWLOG and INFO commandstats.
func runManagementAtScale(t *testing.T, e *env, n, execs, bulkLimit, listLimit int, check bool) {
	ctx := e.ctx
	rdb := e.rdb
	common, err := luaFiles.ReadFile("lua/common.lua")
	if err != nil {
		t.Fatal(err)
	}
	loader := redis.NewScript(string(common) + "\n" + loaderBody)
	t0 := time.Now()
	oldEnd := time.Now().Add(-2 * time.Hour).UnixMilli()
	newEnd := time.Now().UnixMilli()
	cut := time.Now().Add(-time.Hour)
	pending := map[string]bool{}
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		var pend, done []any
		for i := lo; i < min(lo+batch, n); i++ {
			id := fmt.Sprintf("i%06d", i)
			if i%10 == 0 {
				pend = append(pend, id)
				pending[id] = true
			} else {
				done = append(done, id)
			}
		}
		ended := newEnd
		if lo < n/2 {
			ended = oldEnd
		}
		if err := loader.Run(ctx, rdb, []string{e.k.Prefix()}, append([]any{"Pending", 0, 0}, pend...)...).Err(); err != nil {
			t.Fatalf("loading: %v", err)
		}
		if err := loader.Run(ctx, rdb, []string{e.k.Prefix()}, append([]any{"Completed", ended, 2}, done...)...).Err(); err != nil {
			t.Fatalf("loading: %v", err)
		}
	}
	if err := loader.Run(ctx, rdb, []string{e.k.Prefix()}, "Execs", oldEnd, execs, "big").Err(); err != nil {
		t.Fatalf("loading: %v", err)
	}
	t.Logf("loaded %d instances and one with %d executions in %v", n+1, execs, time.Since(t0).Round(time.Millisecond))
	if check {
		e.checkIndices()
	}
	all, err := rdb.ZRange(ctx, e.k.instancesKey(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}

	// Expected results, from the index order and what was loaded.
	var wantPending, wantDeleted []string
	for i, id := range all {
		switch {
		case pending[id]:
			wantPending = append(wantPending, id)
		case id != "big" && i < n/2 && len(wantDeleted) < bulkLimit:
			wantDeleted = append(wantDeleted, id)
		}
	}

	w := &scaleWork{calls: map[string]int{}, max: map[string]int{}, bound: map[string]int{
		"list":        listLimit + 1 + 64, // the page, the offset's entry, a binary search over equal scores
		"delete_bulk": e.s.lim.bulkWork,
		"prune":       e.s.lim.pruneRead + e.s.lim.prune,
	}}
	e.s.onWork = w.hook
	defer func() { e.s.onWork = nil }()
	// Loaded beforehand, so that every call is an EVALSHA that SLOWLOG names.
	for _, sc := range []*redis.Script{e.s.list, e.s.deleteBulk, e.s.prune} {
		if err := sc.Load(ctx, rdb).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range [][]any{
		{"config", "set", "slowlog-log-slower-than", "0"},
		{"config", "set", "slowlog-max-len", "100000"},
		{"slowlog", "reset"},
		{"config", "resetstat"},
	} {
		if err := rdb.Do(ctx, c...).Err(); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
	}

	// A filter that matches nothing reads the (empty) index of its status:
	// the commands its script runs do not grow with the instances. Counted
	// from INFO commandstats, which counts the commands scripts run.
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.ListInstances(ctx, ListOptions{Status: StatusFailed}); err != nil {
		t.Fatal(err)
	}
	if n := scriptCommands(t, rdb); n > 20 {
		t.Errorf("a filtered list with no match ran %d commands inside its script, want at most 20", n)
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	// The bystander: one connection pinging back to back.
	by := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	defer by.Close()
	stop := make(chan struct{})
	var worst time.Duration
	var pings int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			t1 := time.Now()
			if err := by.Ping(context.Background()).Err(); err != nil {
				t.Errorf("bystander PING: %v", err)
				return
			}
			worst = max(worst, time.Since(t1))
			pings++
		}
	}()

	opStart := time.Now()
	// A filter that matches nothing.
	p, err := e.s.ListInstances(ctx, ListOptions{Status: StatusFailed})
	if err != nil || len(p.InstanceIDs) != 0 || p.NextOffset != -1 {
		t.Fatalf("list failed: %+v, %v; want an empty last page", p, err)
	}
	// Every pending instance, page by page.
	var got []string
	for off := 0; off >= 0; {
		p, err := e.s.ListInstances(ctx, ListOptions{Status: StatusPending, Offset: off, Limit: listLimit})
		if err != nil {
			t.Fatal(err)
		}
		if p.NextOffset >= 0 && len(p.InstanceIDs) != listLimit {
			t.Fatalf("short page of %d before the last (offset %d)", len(p.InstanceIDs), off)
		}
		got = append(got, p.InstanceIDs...)
		off = p.NextOffset
	}
	if !slices.Equal(got, wantPending) {
		t.Fatalf("listed %d pending instances, want %d (first %v)", len(got), len(wantPending), wantPending[:min(3, len(wantPending))])
	}
	listTime := time.Since(opStart)

	t1 := time.Now()
	r, err := e.s.DeleteInstances(ctx, BulkDeleteFilter{CompletedBefore: cut, Limit: bulkLimit})
	if err != nil {
		t.Fatalf("DeleteInstances: %v", err)
	}
	deleteTime := time.Since(t1)
	wantEqual(t, "bulk delete", DeleteResult{Instances: bulkLimit, Executions: bulkLimit, Events: 2 * bulkLimit}, r)

	t1 = time.Now()
	pr, err := e.s.PruneExecutions(ctx, "big", PruneOptions{KeepLast: 1})
	if err != nil {
		t.Fatalf("PruneExecutions: %v", err)
	}
	pruneTime := time.Since(t1)
	wantEqual(t, "prune", PruneResult{Instances: 1, Executions: execs - 1, Events: 2 * (execs - 1)}, pr)
	close(stop)
	wg.Wait()

	for _, id := range wantDeleted {
		if e.exists(e.k.InstanceKey(id)) {
			t.Fatalf("%s not deleted", id)
		}
	}
	if card := rdb.ZCard(ctx, e.k.instancesKey()).Val(); card != int64(n+1-bulkLimit) {
		t.Fatalf("%d instances left, want %d", card, n+1-bulkLimit)
	}
	if check {
		e.checkIndices()
	}
	for _, o := range w.over {
		t.Error(o)
	}
	if w.calls["delete_bulk"] < 2 || w.calls["prune"] < 2 {
		t.Errorf("calls %v: the bulk delete and the prune should take several calls", w.calls)
	}

	// Report.
	t.Logf("at %d instances: list (1 + %d pages) %v, bulk delete of %d %v, prune of %d executions %v",
		n, w.calls["list"]-1, listTime.Round(time.Millisecond), bulkLimit, deleteTime.Round(time.Millisecond),
		execs-1, pruneTime.Round(time.Millisecond))
	t.Logf("script calls %v, most work in one call %v", w.calls, w.max)
	t.Logf("bystander: %d PINGs, worst %v", pings, worst.Round(10*time.Microsecond))
	names := map[string]string{e.s.list.Hash(): "list", e.s.deleteBulk.Hash(): "delete_bulk", e.s.prune.Hash(): "prune"}
	logs, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	slow := map[string][]time.Duration{}
	for _, l := range logs {
		if len(l.Args) > 1 && strings.EqualFold(l.Args[0], "evalsha") {
			if name, ok := names[l.Args[1]]; ok {
				slow[name] = append(slow[name], l.Duration)
			}
		}
	}
	for name, ds := range slow {
		slices.Sort(ds)
		t.Logf("SLOWLOG %s: %d calls, median %v, 99th percentile %v, longest %v", name, len(ds),
			ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1])
	}
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "cmdstat_evalsha:") || strings.HasPrefix(line, "cmdstat_eval:") {
			t.Logf("commandstats %s", strings.TrimSpace(line))
		}
	}
}

// scriptCommands sums the calls of INFO commandstats except those a client
// sends itself (the scripts, PING and the test's own commands).
func scriptCommands(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch name {
		case "evalsha", "eval", "ping", "info", "config", "config|resetstat", "script", "script|load", "slowlog":
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				c, _ := strconv.Atoi(v)
				n += c
			}
		}
	}
	return n
}

// TestManagementPagesInBoundedCalls runs the scale scenario at 5,000
// instances with small budgets, so that listing, bulk deletion and
// pruning each take many script calls: the results must be exactly those
// of one unbounded pass, every call within its budget.
func TestManagementPagesInBoundedCalls(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		if !e.b.Real {
			t.Skip("real redis-server only: the loader and SLOWLOG")
		}
		e.s.lim.bulkWork, e.s.lim.bulkIDs, e.s.lim.prune, e.s.lim.pruneRead = 25, 7, 9, 13
		runManagementAtScale(t, e, 5000, 300, 700, 37, true)
	})
}

// TestManagementAtScale is the scale scenario at 100,000 instances with the
// default budgets (issue 8, defect 17): every script call stays within its
// budget, and the log reports the bystander's worst latency and the
// scripts' times (docs/operations.md, "Management at scale").
func TestManagementAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 instances: not with -short")
	}
	forEach(t, func(t *testing.T, e *env) {
		if !e.b.Real {
			t.Skip("real redis-server only: the loader and SLOWLOG")
		}
		runManagementAtScale(t, e, 100_000, 5000, 1000, MaxListLimit, false)
	})
}
