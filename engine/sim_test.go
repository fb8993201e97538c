package engine

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/replay"
)

// sim is an in-memory runtime for engine tests: it stores history as encoded
// JSON (so every test also round-trips the stored form), runs activities
// inline, fires timers by advancing a fake clock, and replays either through a
// cached replay.Executor (sticky) or from stored history on every turn.
type sim struct {
	t        testing.TB
	orchs    *OrchestrationRegistry
	acts     map[string]ActivityFunc
	sticky   bool
	instance string

	now       time.Time
	execution int64
	name      string
	version   string
	stored    []string // history of the current execution, encoded
	inbox     []replay.Message
	timers    []replay.TimerRequest
	work      []replay.ActivityRequest
	children  []replay.Message // completions of started sub-orchestrations, delivered like activity results
	cached    *replay.Executor
	events    map[time.Duration][]replay.Message // external events raised when the clock passes the offset
	start     time.Time
	versions  []string // version of every execution, in order
	maxTurns  int

	status  replay.ExecutionStatus
	output  string
	failure *ErrorDetails
}

func newSim(t testing.TB, orchs *OrchestrationRegistry, acts map[string]ActivityFunc, sticky bool) *sim {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &sim{t: t, orchs: orchs, acts: acts, sticky: sticky, instance: "inst-1", now: t0, start: t0,
		events: map[time.Duration][]replay.Message{}, maxTurns: 10000}
}

func (s *sim) raiseAt(after time.Duration, name, data string) {
	s.events[after] = append(s.events[after], replay.Message{Kind: replay.MessageExternalEvent, Name: name, Result: data})
}

// run starts name with input and processes turns until the instance ends or
// nothing is left to do. It returns the final status.
func (s *sim) run(name, version, input string) replay.ExecutionStatus {
	s.t.Helper()
	s.inbox = append(s.inbox, replay.Message{Kind: replay.MessageStart, Name: name, Version: version, Input: input})
	for turns := 0; turns < s.maxTurns; turns++ {
		if len(s.inbox) == 0 && !s.advance() {
			return s.status
		}
		msgs := s.inbox
		s.inbox = nil
		if done := s.turn(msgs); done {
			return s.status
		}
	}
	s.t.Fatalf("sim: more than %d turns", s.maxTurns)
	return ""
}

// advance produces the next inbox messages: run pending activities, else fire
// the next timer or external event. It reports false when nothing is pending.
func (s *sim) advance() bool {
	if len(s.children) > 0 {
		s.inbox = append(s.inbox, s.children[0])
		s.children = s.children[1:]
		return true
	}
	if len(s.work) > 0 {
		w := s.work[0]
		s.work = s.work[1:]
		fn := s.acts[w.Name]
		if fn == nil {
			s.t.Fatalf("sim: activity %q not registered", w.Name)
		}
		out, err := fn(newActivityContext(s.t.Context(), w, "sim", 1, nil), w.Input)
		if errors.Is(err, errNeverCompletes) {
			return s.advance() // the work item is lost: its completion never arrives
		}
		var failure *ErrorDetails
		if err != nil {
			failure = DetailsOf(err, KindActivityFailed)
		}
		s.inbox = append(s.inbox, w.Completion(out, (*replay.Failure)(failure)))
		return true
	}
	// next timer or external event in time order
	var offsets []time.Duration
	for off := range s.events {
		offsets = append(offsets, off)
	}
	sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
	sort.SliceStable(s.timers, func(i, j int) bool { return s.timers[i].FireAt.Before(s.timers[j].FireAt) })
	if len(offsets) > 0 && (len(s.timers) == 0 || !s.start.Add(offsets[0]).After(s.timers[0].FireAt)) {
		if at := s.start.Add(offsets[0]); at.After(s.now) {
			s.now = at
		}
		s.inbox = append(s.inbox, s.events[offsets[0]]...)
		delete(s.events, offsets[0])
		return true
	}
	if len(s.timers) > 0 {
		tm := s.timers[0]
		s.timers = s.timers[1:]
		if tm.FireAt.After(s.now) {
			s.now = tm.FireAt
		}
		s.inbox = append(s.inbox, tm.Message)
		return true
	}
	return false
}

func (s *sim) turn(msgs []replay.Message) (ended bool) {
	s.t.Helper()
	s.now = s.now.Add(time.Millisecond)
	if s.cached == nil || !s.sticky {
		if s.cached != nil {
			s.cached.Close()
		}
		s.cached = nil
		if len(s.stored) == 0 { // new execution: resolve the version from the start message
			start := msgs[0]
			if !start.IsStart() {
				s.t.Fatalf("sim: new execution without a start message: %+v", start)
			}
			_, ver, err := s.orchs.Resolve(start.Name, start.Version)
			if err != nil {
				s.t.Fatalf("sim: resolve: %v", err)
			}
			s.execution++
			s.name, s.version = start.Name, ver
			s.versions = append(s.versions, ver)
		}
		fn, _, err := s.orchs.Resolve(s.name, s.version)
		if err != nil {
			s.t.Fatalf("sim: resolve exact: %v", err)
		}
		history, err := replay.DecodeHistory(s.stored)
		if err != nil {
			s.t.Fatalf("sim: decode stored history: %v", err)
		}
		x, err := replay.NewExecutor(bind(fn), replay.ExecutionInfo{InstanceID: s.instance, ExecutionID: s.execution, Name: s.name, Version: s.version}, history, replay.ExecutorOptions{})
		if err != nil {
			s.t.Fatalf("sim: new executor: %v", err)
		}
		s.cached = x
	}
	res, err := s.cached.Turn(s.now, msgs)
	if err != nil {
		s.t.Fatalf("sim: turn: %v", err)
	}
	for _, e := range res.NewEvents {
		enc, err := replay.EncodeEvent(e)
		if err != nil {
			s.t.Fatalf("sim: encode: %v", err)
		}
		s.stored = append(s.stored, enc)
	}
	if len(s.stored) != s.cached.HistoryLen() {
		s.t.Fatalf("sim: stored %d events, executor holds %d", len(s.stored), s.cached.HistoryLen())
	}
	s.work = append(s.work, res.Activities...)
	for _, c := range res.Children {
		if c.Parent { // a child completes at once with an output that names what was started
			s.children = append(s.children, replay.Message{Kind: replay.MessageSubOrchestrationCompleted, Execution: c.Start.ParentExecution,
				EventID: c.Start.ParentEventID, Result: fmt.Sprintf("child(%s,%s,%s,%s)", c.Name, c.Version, c.InstanceID, c.Input)})
		}
	}
	s.timers = append(s.timers, res.Timers...)
	s.status, s.output, s.failure = res.Status, res.Output, (*ErrorDetails)(res.Failure)
	switch res.Status {
	case replay.StatusContinuedAsNew:
		s.cached.Close()
		s.cached = nil
		s.stored = nil
		s.timers = nil
		s.work = nil
		s.inbox = append([]replay.Message{*res.Next}, s.inbox...)
		return false
	case replay.StatusCompleted, replay.StatusFailed:
		s.cached.Close()
		return true
	}
	return false
}

// kinds returns the stored history as "Kind:Name" strings.
func (s *sim) kinds() []string {
	h, err := replay.DecodeHistory(s.stored)
	if err != nil {
		s.t.Fatalf("decode: %v", err)
	}
	out := make([]string, len(h))
	for i, e := range h {
		out[i] = string(e.Kind)
		if e.Name != "" {
			out[i] += ":" + e.Name
		}
	}
	return out
}

// bothWays runs a scenario with the sticky cache on and off and checks that
// both produce the same stored history, status and output.
func bothWays(t *testing.T, orchs *OrchestrationRegistry, acts map[string]ActivityFunc, setup func(*sim), name, input string) *sim {
	t.Helper()
	var results [2]*sim
	for i, sticky := range []bool{true, false} {
		s := newSim(t, orchs, acts, sticky)
		if setup != nil {
			setup(s)
		}
		s.run(name, "", input)
		results[i] = s
	}
	a, b := results[0], results[1]
	if a.status != b.status || a.output != b.output {
		t.Fatalf("sticky and replay differ: status %s/%s output %q/%q", a.status, b.status, a.output, b.output)
	}
	if fmt.Sprint(a.stored) != fmt.Sprint(b.stored) {
		t.Fatalf("sticky and replay histories differ:\nsticky: %v\nreplay: %v", a.stored, b.stored)
	}
	return a
}
