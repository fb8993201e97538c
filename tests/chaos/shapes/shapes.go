// Package shapes holds the orchestrations and the activity of the
// fault-injection suite in tests/chaos, and the arithmetic that tells the
// suite what each instance must output. The worker binary
// (tests/chaos/chaosworker) registers them; the test computes the expected
// outputs and activity runs from the same functions, so both sides agree by
// construction.
//
// Every activity is "Step": its input is "<label>:<x>", it reports its run
// through the Recorder given to Registries (instance, label, attempt) and
// returns Mix(x, label). Labels are unique within an instance, so the runs of
// one activity can be counted outside Redis.
package shapes

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/duroworker/duroworker/engine"
)

// Orchestration names, one per shape.
const (
	// Chain runs ChainLength activities one after the other, each on the
	// previous one's output.
	Chain = "Chain"
	// FanOut runs FanWidth activities at once and sums their outputs.
	FanOut = "FanOut"
	// Parent runs two Child sub-orchestrations at once, then one activity.
	Parent = "Parent"
	// Child is the sub-orchestration of Parent: two chained activities.
	Child = "Child"
	// Loop continues as new LoopGenerations-1 times, one activity per
	// execution, with a short durable timer in the first one.
	Loop = "Loop"
	// Event waits for the external event EventName (it publishes the custom
	// status Waiting when it subscribed) and for one message on the event
	// queue QueueName, then runs one activity on both payloads.
	Event = "Event"
	// Session runs SessionLength activities on the session "s-<instance>".
	Session = "Session"
)

// Shape parameters.
const (
	ChainLength     = 5
	FanWidth        = 6
	LoopGenerations = 4
	SessionLength   = 3
	// EventName is the external event the Event shape waits for.
	EventName = "go"
	// QueueName is the event queue the Event shape dequeues from.
	QueueName = "q"
	// Waiting is the custom status of an Event instance once its
	// subscription to EventName is committed: raising the event is safe
	// from then on.
	Waiting = "waiting"
)

// Roots are the shapes the suite starts, in the order instance numbers
// cycle through them.
var Roots = []string{Chain, FanOut, Parent, Loop, Event, Session}

// Mod keeps every value small.
const Mod = 1_000_000_007

// Mix is the activity's arithmetic: a deterministic function of its input
// and its label.
func Mix(x uint64, label string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(label))
	return (x*1_099_511_628_211 + h.Sum64()%Mod) % Mod
}

// Hash maps a payload (an event's data) to a number.
func Hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64() % Mod
}

// InstanceID is the id of root instance number i, and ShapeOf(i) its shape.
func InstanceID(i int) string {
	return fmt.Sprintf("%s-%05d", strings.ToLower(ShapeOf(i)), i)
}

// ShapeOf is the orchestration name of root instance number i.
func ShapeOf(i int) string { return Roots[i%len(Roots)] }

// Input is the input of root instance number i.
func Input(i int) string {
	if ShapeOf(i) == Loop {
		return "0:" + strconv.Itoa(1000+i)
	}
	return strconv.Itoa(1000 + i)
}

// EventData is the payload the suite raises as EventName for an Event
// instance, and QueueData the message it enqueues on QueueName.
func EventData(id string) string { return "go-" + id }

// QueueData is the message enqueued on QueueName for an Event instance.
func QueueData(id string) string { return "q-" + id }

// ChildIDs are the ids of a Parent instance's two children.
func ChildIDs(parent string) [2]string { return [2]string{parent + ".c0", parent + ".c1"} }

// Run names one expected activity run: the instance that scheduled it and
// its label.
type Run struct {
	Instance, Label string
}

// Expected returns the output root instance number i must complete with,
// and the activity runs it (and its children) must make at least once.
func Expected(i int) (output string, runs []Run) {
	id, in := InstanceID(i), Input(i)
	switch ShapeOf(i) {
	case Chain:
		x := atoi(in)
		for k := range ChainLength {
			l := fmt.Sprintf("c%d", k)
			runs = append(runs, Run{id, l})
			x = Mix(x, l)
		}
		return "chain:" + utoa(x), runs
	case FanOut:
		x, sum := atoi(in), uint64(0)
		for k := range FanWidth {
			l := fmt.Sprintf("f%d", k)
			runs = append(runs, Run{id, l})
			sum = (sum + Mix(x+uint64(k), l)) % Mod
		}
		return "fan:" + utoa(sum), runs
	case Parent:
		x := atoi(in)
		var outs [2]uint64
		for k, cid := range ChildIDs(id) {
			y := x + uint64(k)
			for _, l := range []string{"k0", "k1"} {
				runs = append(runs, Run{cid, l})
				y = Mix(y, l)
			}
			outs[k] = y
		}
		runs = append(runs, Run{id, "p0"})
		return "parent:" + utoa(Mix((outs[0]+outs[1])%Mod, "p0")), runs
	case Loop:
		x := atoi(strings.SplitN(in, ":", 2)[1])
		for g := range LoopGenerations {
			l := fmt.Sprintf("g%d", g)
			runs = append(runs, Run{id, l})
			x = Mix(x, l)
		}
		return "loop:" + utoa(x), runs
	case Event:
		x := (atoi(in) + Hash(EventData(id)) + Hash(QueueData(id))) % Mod
		runs = append(runs, Run{id, "e0"})
		return "event:" + utoa(Mix(x, "e0")), runs
	case Session:
		x := atoi(in)
		for k := range SessionLength {
			l := fmt.Sprintf("s%d", k)
			runs = append(runs, Run{id, l})
			x = Mix(x, l)
		}
		return "session:" + utoa(x), runs
	}
	panic("shapes: unknown shape " + ShapeOf(i))
}

// Recorder is called by every activity run when it starts (done false) and
// before it returns its result (done true); ctx tells the instance that
// scheduled it and the attempt.
type Recorder func(ctx *engine.ActivityContext, label string, done bool)

// Registries returns the orchestrations and the activity of the suite.
// Activities sleep for 20 to 100 milliseconds (a function of their label), so
// that faults hit some of them while they run.
func Registries(record Recorder) (*engine.OrchestrationRegistry, *engine.ActivityRegistry) {
	step := func(ctx *engine.OrchestrationContext, label string, x uint64, opts ...engine.ActivityOption) (uint64, error) {
		out, err := ctx.ScheduleActivity("Step", label+":"+utoa(x), opts...).Get()
		if err != nil {
			return 0, err
		}
		return strconv.ParseUint(out, 10, 64)
	}
	orchs := engine.NewOrchestrationRegistry().
		Register(Chain, func(ctx *engine.OrchestrationContext, in string) (string, error) {
			x := atoi(in)
			for k := range ChainLength {
				var err error
				if x, err = step(ctx, fmt.Sprintf("c%d", k), x); err != nil {
					return "", err
				}
			}
			return "chain:" + utoa(x), nil
		}).
		Register(FanOut, func(ctx *engine.OrchestrationContext, in string) (string, error) {
			x := atoi(in)
			fs := make([]*engine.Future[string], FanWidth)
			aw := make([]engine.Awaitable, FanWidth)
			for k := range FanWidth {
				fs[k] = ctx.ScheduleActivity("Step", fmt.Sprintf("f%d:%d", k, x+uint64(k)))
				aw[k] = fs[k]
			}
			ctx.Join(aw...)
			sum := uint64(0)
			for _, f := range fs {
				out, err := f.Get()
				if err != nil {
					return "", err
				}
				v, err := strconv.ParseUint(out, 10, 64)
				if err != nil {
					return "", err
				}
				sum = (sum + v) % Mod
			}
			return "fan:" + utoa(sum), nil
		}).
		Register(Parent, func(ctx *engine.OrchestrationContext, in string) (string, error) {
			x := atoi(in)
			ids := ChildIDs(ctx.InstanceID())
			c0 := ctx.ScheduleSubOrchestration(Child, utoa(x), engine.WithInstanceID(ids[0]))
			c1 := ctx.ScheduleSubOrchestration(Child, utoa(x+1), engine.WithInstanceID(ids[1]))
			ctx.Join(c0, c1)
			var sum uint64
			for _, f := range []*engine.Future[string]{c0, c1} {
				out, err := f.Get()
				if err != nil {
					return "", err
				}
				sum = (sum + atoi(out)) % Mod
			}
			v, err := step(ctx, "p0", sum)
			if err != nil {
				return "", err
			}
			return "parent:" + utoa(v), nil
		}).
		Register(Child, func(ctx *engine.OrchestrationContext, in string) (string, error) {
			x := atoi(in)
			for _, l := range []string{"k0", "k1"} {
				var err error
				if x, err = step(ctx, l, x); err != nil {
					return "", err
				}
			}
			return utoa(x), nil
		}).
		Register(Loop, func(ctx *engine.OrchestrationContext, in string) (string, error) {
			gen, rest, _ := strings.Cut(in, ":")
			g, x := int(atoi(gen)), atoi(rest)
			if g == 0 {
				if _, err := ctx.ScheduleTimer(50 * time.Millisecond).Get(); err != nil {
					return "", err
				}
			}
			v, err := step(ctx, fmt.Sprintf("g%d", g), x)
			if err != nil {
				return "", err
			}
			if g+1 < LoopGenerations {
				return ctx.ContinueAsNew(fmt.Sprintf("%d:%d", g+1, v))
			}
			return "loop:" + utoa(v), nil
		}).
		Register(Event, func(ctx *engine.OrchestrationContext, in string) (string, error) {
			ev := ctx.WaitForEvent(EventName)
			if err := ctx.SetCustomStatus(Waiting); err != nil {
				return "", err
			}
			data, err := ev.Get()
			if err != nil {
				return "", err
			}
			msg, err := ctx.DequeueEvent(QueueName).Get()
			if err != nil {
				return "", err
			}
			v, err := step(ctx, "e0", (atoi(in)+Hash(data)+Hash(msg))%Mod)
			if err != nil {
				return "", err
			}
			return "event:" + utoa(v), nil
		}).
		Register(Session, func(ctx *engine.OrchestrationContext, in string) (string, error) {
			x := atoi(in)
			session := engine.WithSession("s-" + ctx.InstanceID())
			for k := range SessionLength {
				var err error
				if x, err = step(ctx, fmt.Sprintf("s%d", k), x, session); err != nil {
					return "", err
				}
			}
			return "session:" + utoa(x), nil
		}).
		MustBuild()
	acts := engine.NewActivityRegistry().Register("Step", func(ctx *engine.ActivityContext, in string) (string, error) {
		label, xs, ok := strings.Cut(in, ":")
		if !ok {
			return "", fmt.Errorf("step input %q is not <label>:<x>", in)
		}
		x, err := strconv.ParseUint(xs, 10, 64)
		if err != nil {
			return "", fmt.Errorf("step input %q: %w", in, err)
		}
		record(ctx, label, false)
		select {
		case <-time.After(time.Duration(20+Hash(label)%80) * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		record(ctx, label, true)
		return utoa(Mix(x, label)), nil
	}).MustBuild()
	return orchs, acts
}

func atoi(s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("shapes: %q is not a number", s))
	}
	return v
}

func utoa(v uint64) string { return strconv.FormatUint(v, 10) }
