// Package bench holds duroworker's benchmark workloads: programs that
// measure a running system, run by "duroworker bench". They are not tests;
// no speed threshold is ever asserted in a unit test.
package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/queue"
)

// FilterOptions configures the capability-filter workload.
type FilterOptions struct {
	// Incompatible is how many items wait in buckets the measuring worker
	// does not serve. If zero, 100,000.
	Incompatible int
	// Samples is how many fetches are timed per phase. If zero, 2,000.
	Samples int
	// Prefix is the key namespace used (and flushed of its own keys is the
	// caller's business: use a fresh prefix or an empty database).
	Prefix string
	// Progress, when not nil, is called with a description of each step.
	Progress func(string)
}

// FilterPhase is the fetch latency measured in one situation.
type FilterPhase struct {
	Name           string
	Waiting        int // incompatible items waiting meanwhile
	P50, P95, P99  time.Duration
	Mean           time.Duration
	FetchedNothing int // fetches that found the compatible item missing (must be 0)
}

// FilterResult compares fetch latency with and without incompatible work.
type FilterResult struct {
	Orchestrations [2]FilterPhase // empty, then with Incompatible waiting
	Activities     [2]FilterPhase
}

// Ratio returns the p50 latency with incompatible work over the p50 without.
func Ratio(p [2]FilterPhase) float64 {
	if p[0].P50 == 0 {
		return 0
	}
	return float64(p[1].P50) / float64(p[0].P50)
}

// RunFilter measures what a worker pays to fetch compatible work when a large
// amount of work it cannot take waits in the same Redis: first on an empty
// store, then with opts.Incompatible orchestration starts and activities in
// buckets it does not serve. Each sample enqueues one compatible item, then
// times the fetch that locks it, then acknowledges it.
func RunFilter(ctx context.Context, rdb redis.UniversalClient, opts FilterOptions) (FilterResult, error) {
	if opts.Incompatible == 0 {
		opts.Incompatible = 100_000
	}
	if opts.Samples == 0 {
		opts.Samples = 2_000
	}
	if opts.Prefix == "" {
		opts.Prefix = "bench-filter"
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	store := queue.New(rdb, queue.Options{Prefix: opts.Prefix})
	var res FilterResult
	var err error

	progress("orchestrations, empty store")
	if res.Orchestrations[0], err = measureOrchestrations(ctx, store, "empty", 0, opts.Samples); err != nil {
		return res, err
	}
	progress("activities, empty store")
	if res.Activities[0], err = measureActivities(ctx, store, "empty", 0, opts.Samples); err != nil {
		return res, err
	}
	progress(fmt.Sprintf("enqueueing %d incompatible orchestration starts and %d incompatible activities", opts.Incompatible, opts.Incompatible))
	if err := fillIncompatible(ctx, store, opts.Incompatible); err != nil {
		return res, err
	}
	progress("orchestrations, with incompatible work waiting")
	if res.Orchestrations[1], err = measureOrchestrations(ctx, store, "incompatible", opts.Incompatible, opts.Samples); err != nil {
		return res, err
	}
	progress("activities, with incompatible work waiting")
	if res.Activities[1], err = measureActivities(ctx, store, "incompatible", opts.Incompatible, opts.Samples); err != nil {
		return res, err
	}
	return res, nil
}

const (
	compatibleOrch     = "bench::compatible"
	incompatibleOrch   = "bench::incompatible"
	compatibleActivity = "bench::compatible-activity"
	incompatibleAct    = "bench::incompatible-activity"
)

// servedBuckets is what a worker registering the compatible orchestration
// (one version) reads, as a worker computes it.
func servedBuckets() []string {
	s := capability.Serves{Orchestrations: map[string][]string{compatibleOrch: {"1.0.0"}}, ReplayRange: capability.MustRange("0.0.0", "0.1.0")}
	return s.OrchestrationBuckets([]string{"0.1.0"})
}

func measureOrchestrations(ctx context.Context, store *queue.Store, phase string, waiting, samples int) (FilterPhase, error) {
	buckets := servedBuckets()
	lat := make([]time.Duration, 0, samples)
	p := FilterPhase{Name: "orchestrations, " + phase, Waiting: waiting}
	for i := 0; i < samples; i++ {
		id := fmt.Sprintf("c-%s-%d", phase, i)
		if err := store.CreateInstance(ctx, queue.CreateRequest{InstanceID: id, Name: compatibleOrch,
			Bucket: capability.StartBucket(compatibleOrch), Message: `{"kind":"Start","name":"` + compatibleOrch + `"}`}); err != nil {
			return p, err
		}
		start := time.Now()
		res, err := store.FetchOrchestrations(ctx, queue.FetchOrchestrationsRequest{Buckets: buckets, Max: 1, LockTimeout: time.Minute})
		lat = append(lat, time.Since(start))
		if err != nil {
			return p, err
		}
		if len(res.Items) != 1 || res.Items[0].InstanceID != id {
			p.FetchedNothing++
			continue
		}
		it := res.Items[0]
		if err := store.AckOrchestration(ctx, queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: 1,
			Status: queue.StatusCompleted, NewEvents: []string{"{}"}}); err != nil {
			return p, err
		}
	}
	summarize(&p, lat)
	return p, nil
}

func measureActivities(ctx context.Context, store *queue.Store, phase string, waiting, samples int) (FilterPhase, error) {
	// One running instance schedules the compatible activities.
	owner := "act-owner-" + phase
	if err := store.CreateInstance(ctx, queue.CreateRequest{InstanceID: owner, Name: compatibleOrch,
		Bucket: "o:bench::owner-" + phase, Message: "{}"}); err != nil {
		return FilterPhase{}, err
	}
	lat := make([]time.Duration, 0, samples)
	p := FilterPhase{Name: "activities, " + phase, Waiting: waiting}
	buckets := []string{capability.ActivityBucket(compatibleActivity)}
	for i := 0; i < samples; i++ {
		if err := scheduleWork(ctx, store, owner, "o:bench::owner-"+phase, capability.ActivityBucket(compatibleActivity), 1); err != nil {
			return p, err
		}
		start := time.Now()
		res, err := store.FetchWork(ctx, queue.FetchWorkRequest{Buckets: buckets, Max: 1, LockTimeout: time.Minute})
		lat = append(lat, time.Since(start))
		if err != nil {
			return p, err
		}
		if len(res.Items) != 1 {
			p.FetchedNothing++
			continue
		}
		if err := store.AckWork(ctx, res.Items[0].ID, res.Items[0].Token, ""); err != nil {
			return p, err
		}
	}
	summarize(&p, lat)
	return p, nil
}

// scheduleWork creates n work items in bucket through an ack of owner, the
// way a turn does.
func scheduleWork(ctx context.Context, store *queue.Store, owner, ownerBucket, bucket string, n int) error {
	if err := store.Enqueue(ctx, owner, "{}"); err != nil {
		return err
	}
	res, err := store.FetchOrchestrations(ctx, queue.FetchOrchestrationsRequest{Buckets: []string{ownerBucket}, Max: 1, LockTimeout: time.Minute})
	if err != nil {
		return err
	}
	if len(res.Items) != 1 {
		return fmt.Errorf("bench: owner %s not fetchable", owner)
	}
	ack := queue.OrchestrationAck{InstanceID: owner, Token: res.Items[0].Token, ExecutionID: 1, Status: queue.StatusRunning}
	for i := 0; i < n; i++ {
		ack.Activities = append(ack.Activities, queue.WorkItem{Bucket: bucket, Body: "{}"})
	}
	return store.AckOrchestration(ctx, ack)
}

func fillIncompatible(ctx context.Context, store *queue.Store, n int) error {
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := store.CreateInstance(ctx, queue.CreateRequest{InstanceID: fmt.Sprint("x-", i), Name: incompatibleOrch,
					Bucket: capability.StartBucket(incompatibleOrch), Message: "{}"}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	owner := "incompatible-owner"
	if err := store.CreateInstance(ctx, queue.CreateRequest{InstanceID: owner, Name: incompatibleOrch, Bucket: "o:bench::filler", Message: "{}"}); err != nil {
		return err
	}
	for left := n; left > 0; left -= queue.MaxAckEntries {
		if err := scheduleWork(ctx, store, owner, "o:bench::filler", capability.ActivityBucket(incompatibleAct), min(left, queue.MaxAckEntries)); err != nil {
			return err
		}
	}
	return nil
}

func summarize(p *FilterPhase, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	p.P50, p.P95, p.P99 = q(0.50), q(0.95), q(0.99)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	p.Mean = sum / time.Duration(len(lat))
}
