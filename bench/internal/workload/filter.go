package workload

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/result"

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

// filterPhase is the fetch latency measured in one situation.
type filterPhase struct {
	result.Percentiles
	Name           string
	Waiting        int // incompatible items waiting meanwhile
	FetchedNothing int // fetches that found the compatible item missing (must be 0)
}

// filterResult compares fetch latency with and without incompatible work.
type filterResult struct {
	Orchestrations [2]filterPhase // empty, then with Incompatible waiting
	Activities     [2]filterPhase
}

// ratio returns the p50 latency with incompatible work over the p50 without.
func ratio(p [2]filterPhase) float64 {
	if p[0].P50 == 0 {
		return 0
	}
	return float64(p[1].P50) / float64(p[0].P50)
}

// runFilter measures what a worker pays to fetch compatible work when a large
// amount of work it cannot take waits in the same Redis: first on an empty
// store, then with opts.Incompatible orchestration starts and activities in
// buckets it does not serve. Each sample enqueues one compatible item, then
// times the fetch that locks it, then acknowledges it.
func runFilter(ctx context.Context, rdb redis.UniversalClient, opts FilterOptions) (filterResult, error) {
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
	var res filterResult
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

func measureOrchestrations(ctx context.Context, store *queue.Store, phase string, waiting, samples int) (filterPhase, error) {
	buckets := servedBuckets()
	lat := make([]time.Duration, 0, samples)
	p := filterPhase{Name: "orchestrations, " + phase, Waiting: waiting}
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
	p.Percentiles = result.Summarize(lat)
	return p, nil
}

func measureActivities(ctx context.Context, store *queue.Store, phase string, waiting, samples int) (filterPhase, error) {
	// One running instance schedules the compatible activities.
	owner := "act-owner-" + phase
	if err := store.CreateInstance(ctx, queue.CreateRequest{InstanceID: owner, Name: compatibleOrch,
		Bucket: "o:bench::owner-" + phase, Message: "{}"}); err != nil {
		return filterPhase{}, err
	}
	lat := make([]time.Duration, 0, samples)
	p := filterPhase{Name: "activities, " + phase, Waiting: waiting}
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
	p.Percentiles = result.Summarize(lat)
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

// runFilterResult runs the capability-filter workload (runFilter) and
// reports it as a Result.
func runFilterResult(ctx context.Context, rdb *redis.Client, opts FilterOptions) (result.Result, error) {
	if opts.Incompatible == 0 {
		opts.Incompatible = 100_000
	}
	r := result.Result{Workload: result.WorkloadFilter, System: result.SystemDuroworker, Params: fmt.Sprintf("incompatible=%d samples=%d", opts.Incompatible, max(opts.Samples, 2000))}
	res, err := runFilter(ctx, rdb, opts)
	if err != nil {
		r.Error = err.Error()
		return r, err
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r.Add("orch fetch p50 empty", "ms", ms(res.Orchestrations[0].P50))
	r.Add(result.MFilterOrchP50, "ms", ms(res.Orchestrations[1].P50))
	r.Add("orch fetch p99", "ms", ms(res.Orchestrations[1].P99))
	r.Add("act fetch p50 empty", "ms", ms(res.Activities[0].P50))
	r.Add(result.MFilterActP50, "ms", ms(res.Activities[1].P50))
	r.Add("act fetch p99", "ms", ms(res.Activities[1].P99))
	r.Add(result.MFilterOrchRatio, "", ratio(res.Orchestrations))
	r.Add(result.MFilterActRatio, "", ratio(res.Activities))
	missed := res.Orchestrations[0].FetchedNothing + res.Orchestrations[1].FetchedNothing + res.Activities[0].FetchedNothing + res.Activities[1].FetchedNothing
	r.Expected, r.Completed = 1, 1
	if missed > 0 {
		r.Error = fmt.Sprintf("%d fetches missed their compatible item", missed)
	}
	return r, nil
}
