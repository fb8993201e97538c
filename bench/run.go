package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"

	"github.com/duroworker/duroworker/bench/internal/progress"
	"github.com/duroworker/duroworker/bench/internal/report"
	"github.com/duroworker/duroworker/bench/internal/result"
	"github.com/duroworker/duroworker/bench/internal/workload"
)

// runPlan runs every case of plan, cfg.runs times, on duroworker and on the
// peers of --vs that implement it, flushing the database before each, and
// prints the header, the aggregated table and, when judge is set, the
// targets; with --out it also writes the report file.
func runPlan(ctx context.Context, out, errOut io.Writer, cfg *config, plan []workload.Case, judge bool) error {
	if cfg.runs < 1 {
		cfg.runs = 1
	}
	peers, err := parsePeers(cfg.vs)
	if err != nil {
		return err
	}
	sw, err := parseSweeps(cfg.gwPollers, cfg.gwRetry, cfg.asynqConc)
	if err != nil {
		return err
	}
	var endAtWait bool
	switch cfg.end {
	case "", "notify":
	case "wait":
		endAtWait = true
	default:
		return fmt.Errorf("--end %q: want notify or wait", cfg.end)
	}
	if cfg.redisURL != "" && !cfg.flush {
		return errors.New("bench flushes the database between workloads (FLUSHDB): pass --flush to allow it on --redis, or leave --redis empty for an embedded redis-server")
	}
	rdb, redisURL, cleanup, err := cfg.connect(ctx, cfg.redisURL, errOut)
	if err != nil {
		return err
	}
	defer cleanup()
	for i := range plan {
		plan[i].Opts.OrchestrationConcurrency = cfg.orchConcurrency
		plan[i].Opts.ActivityConcurrency = cfg.actConcurrency
		plan[i].Opts.Poll = cfg.poll
		plan[i].Opts.Timeout = cfg.timeout
		plan[i].Opts.RegisterAll = cfg.registerAll
		plan[i].Opts.EndAtWait = endAtWait && (plan[i].Workload == result.WorkloadDrain || plan[i].Workload == result.WorkloadSteady)
	}

	var peer *peerRunner
	if len(peers) > 0 && planHasPeers(plan, peers) {
		peer, err = preparePeers(ctx, errOut, cfg)
		if err != nil {
			return err
		}
		defer peer.cleanup()
	}
	var peerVersions, peerSettings map[string]string
	if peer != nil {
		peerVersions, peerSettings = peer.versions, peer.settings
	}
	// Every script is then sent once with its source (EVAL after NOSCRIPT),
	// which names it in the Redis cost. Before any measured window.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		return fmt.Errorf("SCRIPT FLUSH: %w", err)
	}
	hdr := report.CollectHeader(ctx, rdb, cfg.redisURL == "", peerVersions, peerSettings)
	hdr.Print(out)
	fmt.Fprintln(out)

	var results []result.Result
	for run := 1; run <= cfg.runs; run++ {
		for _, c := range plan {
			label := fmt.Sprintf("[run %d/%d] %s · %s", run, cfg.runs, c.Name, result.SystemDuroworker)
			if err := rdb.FlushDB(ctx).Err(); err != nil {
				return fmt.Errorf("FLUSHDB: %w", err)
			}
			bar := progress.New(errOut, label)
			bar.Start()
			c.Opts.Progress = bar.Update
			stopProfile := startCPUProfile(errOut, cfg.cpuProfile, c.ID, len(plan) > 1, run == 1)
			r, err := c.Run(ctx, rdb)
			stopProfile()
			r.Case = c.Name
			bar.Finish(resultSummary(r, err))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil && r.Error == "" {
				r.Error = err.Error()
			}
			results = append(results, r)
			for _, p := range c.Peers {
				if !slices.Contains(peers, p) {
					continue
				}
				for _, v := range sw.variants(p, c) {
					if err := rdb.FlushDB(ctx).Err(); err != nil {
						return fmt.Errorf("FLUSHDB: %w", err)
					}
					name := p
					if v.label != "" {
						name += " (" + v.label + ")"
					}
					fmt.Fprintf(errOut, "[run %d/%d] %s · %s\n", run, cfg.runs, c.Name, name)
					pr := peer.run(ctx, errOut, redisURL, p, c, v, cfg)
					pr.Case = c.Name
					fmt.Fprintf(errOut, "    %s\n", resultSummary(pr, nil))
					results = append(results, pr)
				}
			}
		}
	}
	_ = rdb.FlushDB(ctx).Err()
	hdr.LoadAvgEnd = report.LoadAvg()

	nameScripts(results)
	aggs := result.AggregateRuns(results)
	report.PrintAggregates(out, aggs, cfg.runs)
	report.PrintSweeps(out, aggs)
	if cfg.costs >= 0 {
		result.WriteCosts(out, aggs, cfg.costs, false)
	}
	var targets []report.Target
	if judge {
		targets = report.EvaluateTargets(plan, result.BestOnly(aggs))
		fmt.Fprintln(out)
		report.PrintTargets(out, targets)
	}
	if hdr.LoadAvgEnd != "" {
		fmt.Fprintf(out, "\nload average at the end: %s (at the start: %s)\n", hdr.LoadAvgEnd, hdr.LoadAvg)
	}
	if cfg.jsonFile != "" {
		rep := report.File{Header: hdr, Command: strings.Join(os.Args, " "), Runs: cfg.runs, Results: results, Aggregates: aggs, Sweeps: result.Sweeps(aggs), Targets: targets}
		for _, c := range plan {
			rep.Plan = append(rep.Plan, report.PlanCase{ID: c.ID, Name: c.Name, Workload: c.Workload})
		}
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonFile, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nwrote %s\n", cfg.jsonFile)
	}
	for _, r := range results {
		if r.Error != "" {
			return fmt.Errorf("%d result(s) with errors (see the table)", countErrors(results))
		}
	}
	return nil
}

// nameScripts gives the scripts of every result the name another result
// learned for the same SHA: a process names a script only when it sends
// its source (the first time after the SCRIPT FLUSH at the start of the
// plan), and each peer run is a new process.
func nameScripts(results []result.Result) {
	names := map[string]string{}
	for _, r := range results {
		if r.Redis == nil {
			continue
		}
		for _, s := range r.Redis.Scripts {
			if s.Name != "" {
				names[s.SHA] = s.Name
			}
		}
	}
	for _, r := range results {
		if r.Redis == nil {
			continue
		}
		for i := range r.Redis.Scripts {
			if s := &r.Redis.Scripts[i]; s.Name == "" {
				s.Name = names[s.SHA]
			}
		}
	}
}

func countErrors(rs []result.Result) int {
	n := 0
	for _, r := range rs {
		if r.Error != "" {
			n++
		}
	}
	return n
}

func parsePeers(vs string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(vs, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case "":
		case result.SystemGoWorkflows, result.SystemAsynq:
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		default:
			return nil, fmt.Errorf("--vs %q: want go-workflows and/or asynq", p)
		}
	}
	return out, nil
}

func planHasPeers(plan []workload.Case, peers []string) bool {
	for _, c := range plan {
		for _, p := range c.Peers {
			if slices.Contains(peers, p) {
				return true
			}
		}
	}
	return false
}

// resultSummary is the one line printed when a workload ends.
func resultSummary(r result.Result, err error) string {
	var parts []string
	if r.Error != "" {
		parts = append(parts, "ERROR: "+r.Error)
	} else if err != nil {
		parts = append(parts, "ERROR: "+err.Error())
	}
	for _, name := range []string{result.MOrchPerSec, result.MActPerSec, result.MP50, result.MP99, result.MMsPerStep, result.MLastOverFirst,
		"lateness " + result.MP99, result.MRoundTrips, result.MIdleSent, result.MIdleCommands, result.MRSS, result.MFilterOrchRatio} {
		if v, ok := r.Get(name); ok {
			parts = append(parts, fmt.Sprintf("%s=%s", name, result.FormatValue(v)))
		}
	}
	if r.Expected > 0 {
		parts = append(parts, fmt.Sprintf("completed %d/%d", r.Completed, r.Expected))
	}
	return strings.Join(parts, "  ")
}

// startCPUProfile profiles the duroworker side of one workload when
// --cpuprofile is set; with several workloads each gets its own file.
func startCPUProfile(errOut io.Writer, path, id string, perCase, enabled bool) func() {
	if path == "" || !enabled {
		return func() {}
	}
	if perCase {
		ext := filepath.Ext(path)
		path = strings.TrimSuffix(path, ext) + "-" + id + ext
		if ext == "" {
			path += ".pprof"
		}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(errOut, "cpuprofile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(errOut, "cpuprofile: %v\n", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
