package main

import (
	"context"
	"fmt"
	"io"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/bench"
)

// newBenchCommand is the bench command (package bench) on the CLI's Redis
// connection.
func newBenchCommand() *cobra.Command { return bench.NewCommand(benchRedis) }

// benchRedis connects to redisURL (errors never show its password), or
// starts an embedded redis-server with persistence off, noting that on log.
// It returns the URL the peers use.
func benchRedis(ctx context.Context, redisURL string, log io.Writer) (*redis.Client, string, func(), error) {
	if redisURL != "" {
		opt, err := parseRedisURL(redisURL)
		if err != nil {
			return nil, "", nil, asUsage(err)
		}
		rdb := redis.NewClient(opt)
		if err := rdb.Ping(ctx).Err(); err != nil {
			_ = rdb.Close()
			return nil, "", nil, connectError(redactURL(redisURL), err, opt.TLSConfig != nil)
		}
		return rdb, redisURL, func() { _ = rdb.Close() }, nil
	}
	st, err := startStore(ctx, storeRedisServer, func(s string) { fmt.Fprintln(log, s) })
	if err != nil {
		return nil, "", nil, fmt.Errorf("starting an embedded redis-server (or pass --redis): %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: st.Addr})
	return rdb, "redis://" + st.Addr + "/0", func() { _ = rdb.Close(); _ = st.Close() }, nil
}
