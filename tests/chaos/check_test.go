package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/tests/chaos/shapes"
)

// report collects what the final checks found.
type report struct {
	began, faultsDone, finished time.Time

	mu       sync.Mutex
	problems map[string][]string // category -> examples (at most maxExamples)
	counts   map[string]int      // category -> occurrences

	instances  int     // roots and children checked
	executions int64   // executions read
	events     int64   // history events read
	completed  []int64 // ActivityCompleted times (Unix ms), for the stalls

	runsExpected int
	runsDone     int // completed runs recorded outside Redis
	runsStarted  int
	duplicates   int // completed runs beyond the first of each activity
	dupActs      int // activities that completed more than once
	maxRuns      int
	sessionMoves int // Session instances whose activities ran on more than one node

	logLines map[string]int // worker log messages (Warn and above) by text
	races    int
	panics   int
}

const maxExamples = 8

func (r *report) problem(category, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[category]++
	if len(r.problems[category]) < maxExamples {
		r.problems[category] = append(r.problems[category], fmt.Sprintf(format, args...))
	}
}

// record is one line of a worker's records file.
type record struct {
	shapes.Run
	attempt int
	node    string
	at      time.Time
	done    bool
}

// readRecords reads every records file of the run.
func (h *harness) readRecords() []record {
	files, _ := filepath.Glob(filepath.Join(h.dir, "*.records"))
	var out []record
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue // a process that never ran an activity has none
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			p := strings.Split(sc.Text(), "\t")
			if len(p) != 6 {
				h.t.Errorf("%s: malformed record %q", f, sc.Text())
				continue
			}
			att, _ := strconv.Atoi(p[2])
			ns, _ := strconv.ParseInt(p[4], 10, 64)
			out = append(out, record{Run: shapes.Run{Instance: p[0], Label: p[1]}, attempt: att, node: p[3], at: time.Unix(0, ns), done: p[5] == "done"})
		}
		_ = fh.Close()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// check verifies every instance, the activity runs, leftover work, dead
// letters and counters; problems fail the test with a message per category.
func (h *harness) check(ctx context.Context) *report {
	rep := &report{problems: map[string][]string{}, counts: map[string]int{}, logLines: map[string]int{}}
	expectedRuns := map[shapes.Run]bool{}

	// Instances: status, exact output, history integrity. Four readers.
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				h.checkRoot(ctx, rep, i)
			}
		}()
	}
	for i := range h.cfg.Instances {
		_, runs := shapes.Expected(i)
		for _, r := range runs {
			expectedRuns[r] = true
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	rep.runsExpected = len(expectedRuns)

	// Activity runs, counted outside Redis.
	recs := h.readRecords()
	done := map[shapes.Run]int{}
	sessNodes := map[string]map[string]bool{}
	for _, r := range recs {
		if !expectedRuns[r.Run] {
			rep.problem("activity run that no instance expects", "%s %s attempt %d on %s", r.Instance, r.Label, r.attempt, r.node)
			continue
		}
		if !r.done {
			rep.runsStarted++
			continue
		}
		rep.runsDone++
		done[r.Run]++
		if strings.HasPrefix(r.Instance, "session-") {
			if sessNodes[r.Instance] == nil {
				sessNodes[r.Instance] = map[string]bool{}
			}
			sessNodes[r.Instance][r.node] = true
		}
	}
	for r := range expectedRuns {
		n := done[r]
		switch {
		case n == 0:
			rep.problem("activity completed in history but no run recorded", "%s %s", r.Instance, r.Label)
		case n > 1:
			rep.duplicates += n - 1
			rep.dupActs++
		}
		rep.maxRuns = max(rep.maxRuns, n)
	}
	for _, nodes := range sessNodes {
		if len(nodes) > 1 {
			rep.sessionMoves++
		}
	}
	h.recs = recs

	h.checkLeftovers(ctx, rep)
	h.checkDeadLetters(ctx, rep)
	h.checkMetrics(ctx, rep)

	slices.Sort(rep.completed)
	for _, cat := range sortedKeys(rep.counts) {
		h.t.Errorf("%s: %d, e.g.:\n  %s", cat, rep.counts[cat], strings.Join(rep.problems[cat], "\n  "))
	}
	return rep
}

// checkRoot checks root instance i and its children.
func (h *harness) checkRoot(ctx context.Context, rep *report, i int) {
	id := shapes.InstanceID(i)
	want, _ := shapes.Expected(i)
	st, err := h.c.Status(ctx, id)
	switch {
	case err != nil:
		rep.problem("status unreadable", "%s: %v", id, err)
		return
	case st.State != "Completed":
		reason := ""
		if st.Failure != nil {
			reason = ": " + st.Failure.Message
		}
		rep.problem("instance not completed", "%s is %s%s", id, st.State, reason)
	case st.Output != want:
		rep.problem("wrong output", "%s output %q, want %q", id, st.Output, want)
	}
	execs := 1
	if shapes.ShapeOf(i) == shapes.Loop {
		execs = shapes.LoopGenerations
	}
	h.checkHistory(ctx, rep, id, execs)
	if shapes.ShapeOf(i) == shapes.Parent {
		for _, cid := range shapes.ChildIDs(id) {
			cst, err := h.c.Status(ctx, cid)
			if err != nil || cst.State != "Completed" {
				rep.problem("instance not completed", "child %s is %s (%v)", cid, cst.State, err)
			}
			h.checkHistory(ctx, rep, cid, 1)
		}
	}
}

// checkHistory checks every execution of an instance: one ending event, last;
// every activity, child and timer completed exactly once; no failures.
func (h *harness) checkHistory(ctx context.Context, rep *report, id string, wantExecs int) {
	rep.mu.Lock()
	rep.instances++
	rep.mu.Unlock()
	execs, err := h.c.ListExecutions(ctx, id)
	if err != nil {
		rep.problem("history unreadable", "%s: listing executions: %v", id, err)
		return
	}
	if len(execs) != wantExecs {
		rep.problem("wrong number of executions", "%s has %d executions, want %d", id, len(execs), wantExecs)
	}
	var times []int64
	var nev int64
	for k, e := range execs {
		evs, err := h.c.ReadHistory(ctx, id, e.ExecutionID)
		if err != nil {
			rep.problem("history unreadable", "%s execution %d: %v", id, e.ExecutionID, err)
			continue
		}
		nev += int64(len(evs))
		wantEnd := client.EventOrchestrationCompleted
		if k < len(execs)-1 {
			wantEnd = client.EventOrchestrationContinuedAsNew
		}
		where := fmt.Sprintf("%s execution %d", id, e.ExecutionID)
		ends := 0
		scheduled := map[int64]client.EventKind{}
		completions := map[int64]int{}
		for j, ev := range evs {
			if ev.Ends() {
				ends++
				if j != len(evs)-1 {
					rep.problem("ending event not last", "%s: %s is event %d of %d", where, ev.Kind, j+1, len(evs))
				}
				if ev.Kind != wantEnd {
					rep.problem("wrong ending event", "%s ends with %s, want %s", where, ev.Kind, wantEnd)
				}
			}
			switch ev.Kind {
			case client.EventActivityScheduled, client.EventSubOrchestrationScheduled, client.EventTimerCreated:
				scheduled[ev.ID] = ev.Kind
			case client.EventActivityCompleted, client.EventSubOrchestrationCompleted, client.EventTimerFired:
				completions[ev.SourceID]++
				if ev.Kind == client.EventActivityCompleted {
					times = append(times, ev.Time.UnixMilli())
				}
			case client.EventActivityFailed, client.EventSubOrchestrationFailed, client.EventOrchestrationFailed:
				msg := ""
				if ev.Error != nil {
					msg = ev.Error.Message
				}
				rep.problem("failure in history", "%s: %s %s", where, ev.Kind, msg)
			}
		}
		if ends != 1 {
			rep.problem("not exactly one ending event", "%s has %d ending events", where, ends)
		}
		for sid, kind := range scheduled {
			if completions[sid] != 1 {
				rep.problem("scheduled work not completed exactly once", "%s: %s (event %d) completed %d times", where, kind, sid, completions[sid])
			}
		}
		for sid, n := range completions {
			if _, ok := scheduled[sid]; !ok {
				rep.problem("completion of nothing scheduled", "%s: %d completions of event %d", where, n, sid)
			}
		}
	}
	rep.mu.Lock()
	rep.executions += int64(len(execs))
	rep.events += nev
	rep.completed = append(rep.completed, times...)
	rep.mu.Unlock()
}

// checkLeftovers waits (bounded) for the store to hold no work: no entries in
// ready or work buckets, no timers, inboxes, work items or locks.
func (h *harness) checkLeftovers(ctx context.Context, rep *report) {
	keys := queue.NewKeys(prefix)
	var found []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		found = found[:0]
		d, err := h.c.GetQueueDepths(ctx)
		if err != nil {
			found = append(found, "queue depths unreadable: "+err.Error())
		} else {
			for _, b := range append(d.Orchestrations, d.Activities...) {
				if b.Ready+b.Delayed+b.Locked > 0 {
					found = append(found, fmt.Sprintf("bucket %s: %d ready, %d delayed, %d locked", b.Bucket, b.Ready, b.Delayed, b.Locked))
				}
			}
			if d.Timers > 0 {
				found = append(found, fmt.Sprintf("%d timers", d.Timers))
			}
		}
		for what, pattern := range map[string]string{
			"inboxes": keys.InboxKey("*"), "work items": keys.WorkItemKey("*"), "work maps": keys.WorkMapKey("*"),
		} {
			if n := h.countKeys(ctx, pattern); n > 0 {
				found = append(found, fmt.Sprintf("%d %s (%s)", n, what, pattern))
			}
		}
		if n := h.countLocks(ctx, keys); n > 0 {
			found = append(found, fmt.Sprintf("%d instances still locked", n))
		}
		if len(found) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, f := range found {
		rep.problem("leftover work after every instance ended", "%s", f)
	}
}

func (h *harness) countKeys(ctx context.Context, pattern string) int {
	n := 0
	it := h.admin.Scan(ctx, 0, pattern, 1000).Iterator()
	for it.Next(ctx) {
		n++
	}
	return n
}

// countLocks counts instance hashes whose lock token is set.
func (h *harness) countLocks(ctx context.Context, keys queue.Keys) int {
	var ids []string
	it := h.admin.Scan(ctx, 0, keys.InstanceKey("*"), 1000).Iterator()
	for it.Next(ctx) {
		ids = append(ids, it.Val())
	}
	n := 0
	for chunk := range slices.Chunk(ids, 500) {
		pipe := h.admin.Pipeline()
		for _, k := range chunk {
			pipe.HGet(ctx, k, "tok")
		}
		cmds, _ := pipe.Exec(ctx)
		for _, c := range cmds {
			if s, err := c.(interface{ Result() (string, error) }).Result(); err == nil && s != "" {
				n++
			}
		}
	}
	return n
}

// checkDeadLetters: no message of this suite should be poisoned.
func (h *harness) checkDeadLetters(ctx context.Context, rep *report) {
	dls, err := h.c.ListDeadLetters(ctx, "", 100)
	if err != nil {
		rep.problem("dead letters unreadable", "%v", err)
		return
	}
	for _, d := range dls {
		rep.problem("dead letter", "%s %s execution %d after %d/%d attempts: %s", d.Kind, d.InstanceID, d.ExecutionID, d.Attempts, d.MaxAttempts, d.Reason)
	}
}

// checkMetrics compares the namespace counters with what the checks read.
func (h *harness) checkMetrics(ctx context.Context, rep *report) {
	m, err := h.c.GetSystemMetrics(ctx)
	if err != nil {
		rep.problem("metrics unreadable", "%v", err)
		return
	}
	n := int64(rep.instances)
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"instances", m.Instances, n}, {"completed", m.Completed, n}, {"failed", m.Failed, 0},
		{"running", m.Running, 0}, {"pending", m.Pending, 0},
		{"executions", m.Executions, rep.executions}, {"history events", m.Events, rep.events},
	} {
		if c.got != c.want {
			rep.problem("counter differs from the store's contents", "%s counter is %d, the store holds %d", c.name, c.got, c.want)
		}
	}
}

var (
	raceRE  = regexp.MustCompile(`WARNING: DATA RACE`)
	panicRE = regexp.MustCompile(`(?m)^(panic: |fatal error: )`)
	msgRE   = regexp.MustCompile(`level=(WARN|ERROR) msg="?([^"=]*?)"? [a-z_]+=`)
)

// scanLogs reads every worker's stderr: data races and panics fail the test;
// warnings are counted for the summary.
func (h *harness) scanLogs(rep *report) {
	h.mu.Lock()
	procs := slices.Clone(h.procs)
	h.mu.Unlock()
	for _, w := range procs {
		b, err := os.ReadFile(w.stderr)
		if err != nil {
			h.t.Errorf("reading the stderr of %s: %v", w.node, err)
			continue
		}
		s := string(b)
		if n := len(raceRE.FindAllStringIndex(s, -1)); n > 0 {
			rep.races += n
			h.t.Errorf("worker %s reported %d data races:\n%s", w.node, n, excerpt(s, raceRE))
		}
		if n := len(panicRE.FindAllStringIndex(s, -1)); n > 0 {
			rep.panics += n
			h.t.Errorf("worker %s panicked:\n%s", w.node, excerpt(s, panicRE))
		}
		for _, m := range msgRE.FindAllStringSubmatch(s, -1) {
			rep.logLines[m[1]+" "+m[2]]++
		}
	}
}

// excerpt returns the text around the first match of re.
func excerpt(s string, re *regexp.Regexp) string {
	loc := re.FindStringIndex(s)
	if loc == nil {
		return ""
	}
	return s[loc[0]:min(len(s), loc[0]+3000)]
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// heldResumed is, for a worker fault, how long the activities the worker was
// running when it was hit waited before they ran again (on another worker,
// after their lock) or finished (on the same worker, after SIGCONT or during
// a graceful shutdown), measured from the fault's start; n is how many there
// were.
func heldResumed(recs []record, f faultRecord) (worst time.Duration, n int) {
	last := map[shapes.Run]bool{} // runs the node started and had not finished before the fault
	byRun := map[shapes.Run][]record{}
	for _, r := range recs {
		if r.at.Before(f.start) {
			if r.node == f.node {
				last[r.Run] = !r.done
			}
			continue
		}
		byRun[r.Run] = append(byRun[r.Run], r)
	}
	for run, held := range last {
		if !held {
			continue
		}
		for _, r := range byRun[run] {
			if !r.done || r.node == f.node {
				worst = max(worst, r.at.Sub(f.start))
				n++
				break
			}
		}
	}
	return worst, n
}

// summary is the table TestChaos logs at the end.
func (r *report) summary(h *harness) string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos summary: %d roots (%d instances with children) checked, %d executions, %d history events\n",
		h.cfg.Instances, r.instances, r.executions, r.events)
	fmt.Fprintf(&b, "  run %s (faults for %s, drain %s), %d worker processes, worker race detector %v\n",
		r.finished.Sub(r.began).Round(time.Second), r.faultsDone.Sub(r.began).Round(time.Second),
		r.finished.Sub(r.faultsDone).Round(time.Second), len(h.procs), raceEnabled)
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  fault\tinjected\tlasted (avg)\tcompletions resumed after (max)\tactivities held by the worker\tthey resumed after (max)")
	byKind := map[string][]faultRecord{}
	h.mu.Lock()
	faults := slices.Clone(h.faults)
	h.mu.Unlock()
	for _, f := range faults {
		byKind[f.kind] = append(byKind[f.kind], f)
	}
	for _, kind := range allFaults {
		fs := byKind[kind]
		if len(fs) == 0 {
			continue
		}
		var lasted, resume, held time.Duration
		heldN := 0
		noResume := 0
		for _, f := range fs {
			lasted += f.end.Sub(f.start)
			i, _ := slices.BinarySearch(r.completed, f.end.UnixMilli())
			if i < len(r.completed) {
				resume = max(resume, time.Duration(r.completed[i]-f.end.UnixMilli())*time.Millisecond)
			} else {
				noResume++
			}
			if strings.HasPrefix(kind, workerFaultPrefix) {
				w, n := heldResumed(h.recs, f)
				held = max(held, w)
				heldN += n
			}
		}
		res := resume.Round(10 * time.Millisecond).String()
		if noResume > 0 {
			res += fmt.Sprintf(" (%d with none after)", noResume)
		}
		heldS, heldT := "-", "-"
		if strings.HasPrefix(kind, workerFaultPrefix) {
			heldS, heldT = strconv.Itoa(heldN), held.Round(10*time.Millisecond).String()
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\n", kind, len(fs), (lasted / time.Duration(len(fs))).Round(10*time.Millisecond), res, heldS, heldT)
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "  activities: %d expected, %d runs completed (%d duplicates over %d activities, at most %d runs of one), %d runs started\n",
		r.runsExpected, r.runsDone, r.duplicates, r.dupActs, r.maxRuns, r.runsStarted)
	fmt.Fprintf(&b, "  session instances whose activities ran on more than one node: %d\n", r.sessionMoves)
	fmt.Fprintf(&b, "  proxy: %d replies dropped, %d connections reset\n", h.proxy.dropped.Load(), h.proxy.resets.Load())
	h.mu.Lock()
	for _, k := range sortedKeys(h.anomaly) {
		fmt.Fprintf(&b, "  client anomaly: %s: %d\n", k, h.anomaly[k])
	}
	var errs []string
	for _, k := range sortedKeys(h.errs) {
		errs = append(errs, fmt.Sprintf("%s %d", k, h.errs[k]))
	}
	h.mu.Unlock()
	fmt.Fprintf(&b, "  client errors retried: %s\n", strings.Join(errs, ", "))
	fmt.Fprintf(&b, "  data races: %d, panics: %d, problems: %d\n", r.races, r.panics, len(r.counts))
	type kv struct {
		k string
		v int
	}
	var lines []kv
	for k, v := range r.logLines {
		lines = append(lines, kv{k, v})
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].v > lines[j].v })
	for i, l := range lines {
		if i == 10 {
			break
		}
		fmt.Fprintf(&b, "  worker log %6d x %s\n", l.v, l.k)
	}
	return b.String()
}
