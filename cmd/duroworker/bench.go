package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/bench"
	"github.com/duroworker/duroworker/engine"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run benchmark workloads against a Redis",
		Long: `Benchmark workloads. Each prints a header with the machine, the Redis version
and its persistence setting, then a table. Without --redis, an embedded
redis-server is started with persistence off.`,
	}
	cmd.AddCommand(newBenchFilterCommand())
	return cmd
}

func newBenchFilterCommand() *cobra.Command {
	var redisURL string
	var incompatible, samples int
	cmd := &cobra.Command{
		Use:   "filter",
		Short: "Fetch latency of compatible work with 100,000 incompatible items waiting",
		Long: `Measures the capability filter: how long a worker's fetch of work it can
take lasts on an empty store, then with --incompatible orchestration starts and
activities waiting in buckets it does not serve. The ratio of the two medians
shows whether fetch cost grows with work the worker cannot take.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBenchFilter(cmd.Context(), cmd.OutOrStdout(), redisURL, incompatible, samples)
		},
	}
	cmd.Flags().StringVar(&redisURL, "redis", "", "Redis URL (redis://host:port/db); empty starts an embedded redis-server")
	cmd.Flags().IntVar(&incompatible, "incompatible", 100_000, "incompatible items of each kind to enqueue")
	cmd.Flags().IntVar(&samples, "samples", 2_000, "timed fetches per phase")
	return cmd
}

func runBenchFilter(ctx context.Context, out io.Writer, redisURL string, incompatible, samples int) error {
	rdb, cleanup, err := benchRedis(ctx, out, redisURL)
	if err != nil {
		return err
	}
	defer cleanup()
	header(ctx, out, rdb)
	prefix := fmt.Sprintf("bench-filter-%d", time.Now().UnixNano())
	res, err := bench.RunFilter(ctx, rdb, bench.FilterOptions{
		Incompatible: incompatible, Samples: samples, Prefix: prefix,
		Progress: func(s string) { fmt.Fprintln(out, "...", s) },
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tWAITING\tP50\tP95\tP99\tMEAN\tMISSED")
	for _, pair := range [][2]bench.FilterPhase{res.Orchestrations, res.Activities} {
		for _, p := range pair {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\n", p.Name, p.Waiting, us(p.P50), us(p.P95), us(p.P99), us(p.Mean), p.FetchedNothing)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "p50 ratio with/without incompatible work: orchestrations %.2fx, activities %.2fx (target <= 1.2x)\n",
		bench.Ratio(res.Orchestrations), bench.Ratio(res.Activities))
	return nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }

// benchRedis connects to redisURL, or starts an embedded redis-server with
// persistence off.
func benchRedis(ctx context.Context, out io.Writer, redisURL string) (*redis.Client, func(), error) {
	if redisURL != "" {
		opt, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("--redis: %w", err)
		}
		rdb := redis.NewClient(opt)
		return rdb, func() { _ = rdb.Close() }, rdb.Ping(ctx).Err()
	}
	st, err := startStore(ctx, storeRedisServer, func(s string) { fmt.Fprintln(out, s) })
	if err != nil {
		return nil, nil, fmt.Errorf("starting an embedded redis-server (or pass --redis): %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: st.Addr})
	return rdb, func() { _ = rdb.Close(); _ = st.Close() }, nil
}

// header prints the facts a benchmark result needs next to it.
func header(ctx context.Context, out io.Writer, rdb *redis.Client) {
	host, _ := os.Hostname()
	fmt.Fprintf(out, "duroworker engine %s, %s, %s/%s, %d CPUs, host %s\n", engine.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), host)
	info, _ := rdb.Info(ctx, "server", "persistence").Result()
	field := func(name string) string {
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				return v
			}
		}
		return "?"
	}
	fsync := "?"
	if cfg, err := rdb.ConfigGet(ctx, "appendfsync").Result(); err == nil {
		fsync = cfg["appendfsync"]
	}
	fmt.Fprintf(out, "redis %s, aof_enabled=%s appendfsync=%s, rdb_bgsave_in_progress=%s\n",
		field("redis_version"), field("aof_enabled"), fsync, field("rdb_bgsave_in_progress"))
}
