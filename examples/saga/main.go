// Command saga books a trip in three steps (flight, hotel, car), each an
// activity against a separate system. When a step fails, the steps already
// booked are compensated (cancelled) in reverse order, and the orchestration
// fails with an error that says what was undone.
//
// Two instances run:
//
//   - trip-lisbon books all three steps and completes;
//   - trip-reykjavik finds no car: the hotel and then the flight are
//     cancelled, and the instance ends Failed.
//
// Compensations run with a retry policy, because giving up on an undo
// leaves a booking behind. Activities run at least once, so each booking
// and cancellation is keyed by the trip id (idempotent in a real system).
//
// What to look for in the output: the ledger of the fake booking systems
// (book flight, book hotel, then cancel hotel, cancel flight: reverse
// order), the "[saga]" traces, and the failure of trip-reykjavik.
//
//	go run ./examples/saga [-redis redis://localhost:6379/0] [-v]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/internal/demo"
	"github.com/duroworker/duroworker/worker"
)

// BookTrip is the orchestration's name.
const BookTrip = "examples::orchestration::book-trip"

// Trip is the orchestration's input.
type Trip struct {
	ID   string `json:"id"`
	City string `json:"city"`
}

// step is one booking with its compensation.
type step struct {
	name         string
	book, unbook string // activity names
}

var steps = []step{
	{"flight", "examples::activity::book-flight", "examples::activity::cancel-flight"},
	{"hotel", "examples::activity::book-hotel", "examples::activity::cancel-hotel"},
	{"car", "examples::activity::book-car", "examples::activity::cancel-car"},
}

// bookTrip runs the steps in order. On the first failure it compensates
// the booked steps, last first, and fails.
func bookTrip(ctx *engine.OrchestrationContext, trip Trip) (string, error) {
	var booked []step
	var refs []string
	for _, s := range steps {
		ref, err := engine.ScheduleActivityTyped[string](ctx, s.book, trip).Get()
		if err != nil {
			ctx.TraceWarn("[saga] step failed; compensating", "step", s.name, "err", err)
			var undone []string
			for i := len(booked) - 1; i >= 0; i-- {
				retry := engine.WithRetry(engine.NewRetryPolicy(5))
				if _, cerr := ctx.ScheduleActivity(booked[i].unbook, refs[i], retry).Get(); cerr != nil {
					return "", fmt.Errorf("compensating %s (%s) failed: %w", booked[i].name, refs[i], cerr)
				}
				ctx.TraceInfo("[saga] compensated", "step", booked[i].name, "ref", refs[i])
				undone = append(undone, booked[i].name)
			}
			return "", fmt.Errorf("trip %s not booked: %s failed (%v); compensated %s", trip.ID, s.name, err, strings.Join(undone, ", "))
		}
		ctx.TraceInfo("[saga] booked", "step", s.name, "ref", ref)
		booked = append(booked, s)
		refs = append(refs, ref)
	}
	return "booked " + strings.Join(refs, ", "), nil
}

// ledger is what the fake booking systems did, in order.
type ledger struct {
	mu      sync.Mutex
	entries map[string][]string // trip id -> entries
}

func (l *ledger) add(trip, entry string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries[trip] = append(l.entries[trip], entry)
}

func (l *ledger) of(trip string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries[trip])
}

// activities are the fake booking systems: a booking returns a reference
// "<STEP>-<trip id>"; the car rental has no cars in Reykjavik.
func activities(l *ledger) *engine.ActivityRegistry {
	b := engine.NewActivityRegistry()
	for _, s := range steps {
		engine.RegisterActivityTyped(b, s.book, func(_ *engine.ActivityContext, trip Trip) (string, error) {
			if s.name == "car" && trip.City == "Reykjavik" {
				return "", errors.New("no car available in " + trip.City)
			}
			ref := strings.ToUpper(s.name) + "-" + trip.ID
			l.add(trip.ID, "book "+ref)
			return ref, nil
		})
		b.Register(s.unbook, func(_ *engine.ActivityContext, ref string) (string, error) {
			_, trip, _ := strings.Cut(ref, "-")
			l.add(trip, "cancel "+ref)
			return "cancelled " + ref, nil
		})
	}
	return b.MustBuild()
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, out io.Writer) int { return demo.Run("saga", args, out, saga) }

func saga(ctx context.Context, env *demo.Env) error {
	l := &ledger{entries: map[string][]string{}}
	orchs := engine.RegisterTyped(engine.NewOrchestrationRegistry(), BookTrip, bookTrip).MustBuild()
	if _, err := env.StartNode("node-1", orchs, activities(l), worker.Options{}); err != nil {
		return err
	}

	cases := []struct {
		trip   Trip
		state  client.State
		ledger []string
	}{
		{Trip{"lisbon", "Lisbon"}, client.StateCompleted,
			[]string{"book FLIGHT-lisbon", "book HOTEL-lisbon", "book CAR-lisbon"}},
		{Trip{"reykjavik", "Reykjavik"}, client.StateFailed,
			[]string{"book FLIGHT-reykjavik", "book HOTEL-reykjavik", "cancel HOTEL-reykjavik", "cancel FLIGHT-reykjavik"}},
	}
	for _, c := range cases {
		if err := env.Client.StartTyped(ctx, "trip-"+c.trip.ID, BookTrip, c.trip); err != nil {
			return err
		}
	}
	var failed []string
	for _, c := range cases {
		id := "trip-" + c.trip.ID
		st, err := env.Wait(ctx, id)
		if err != nil {
			return err
		}
		if st.State == client.StateCompleted {
			env.Printf("%s: %s, output %q", id, st.State, st.Output)
		} else {
			env.Printf("%s: %s, %v", id, st.State, st.Failure)
		}
		got := l.of(c.trip.ID)
		env.Printf("%s: ledger %s", id, strings.Join(got, " | "))
		if st.State != c.state || !slices.Equal(got, c.ledger) {
			failed = append(failed, fmt.Sprintf("%s ended %s with ledger %v, want %s with %v", id, st.State, got, c.state, c.ledger))
		}
	}
	if failed != nil {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}
