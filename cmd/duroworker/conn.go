package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/queue"
)

// Environment variables read when the matching flag is not given.
const (
	envRedis  = "DUROWORKER_REDIS"
	envPrefix = "DUROWORKER_PREFIX"
)

// defaultRedisURL is the --redis default when neither the flag nor
// DUROWORKER_REDIS is set.
const defaultRedisURL = "redis://127.0.0.1:6379/0"

// pingTimeout bounds the first PING that checks the connection.
const pingTimeout = 5 * time.Second

// connFlags are the flags of every command that talks to Redis.
type connFlags struct {
	RedisURL string
	Prefix   string
	// JSON asks for machine-readable output (commands that print results).
	JSON bool
}

// addConnFlags adds --redis and --prefix to cmd, and --json when withJSON.
func addConnFlags(cmd *cobra.Command, c *connFlags, withJSON bool) {
	f := cmd.Flags()
	f.StringVar(&c.RedisURL, "redis", defaultRedisURL,
		"Redis URL: redis://[user:password@]host:port/db, or rediss:// for TLS (env "+envRedis+")")
	f.StringVar(&c.Prefix, "prefix", queue.DefaultPrefix,
		"key namespace shared by the workers and clients of one application (env "+envPrefix+")")
	if withJSON {
		f.BoolVar(&c.JSON, "json", false, "print machine-readable JSON instead of a table")
	}
}

// resolve applies the environment variables to the flags that were not
// given on the command line.
func (c *connFlags) resolve(cmd *cobra.Command) {
	if !cmd.Flags().Changed("redis") {
		if v := os.Getenv(envRedis); v != "" {
			c.RedisURL = v
		}
	}
	if !cmd.Flags().Changed("prefix") {
		// set but empty is an error (validatePrefix), not the default
		if v, ok := os.LookupEnv(envPrefix); ok {
			c.Prefix = v
		}
	}
}

// redisOptions parses the Redis URL; its errors never show the password.
func (c *connFlags) redisOptions() (*redis.Options, error) {
	if strings.TrimSpace(c.RedisURL) == "" {
		return nil, errors.New("--redis is empty: want a URL such as " + defaultRedisURL)
	}
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), c.RedisURL, redactURL(c.RedisURL))
		return nil, fmt.Errorf("--redis %s: %s (want redis://[user:password@]host:port/db or rediss://...)", redactURL(c.RedisURL), msg)
	}
	return opt, nil
}

// validatePrefix rejects a prefix queue.New would panic on.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return errors.New("--prefix is empty (or " + envPrefix + " is set to an empty string): name the namespace, for example " + queue.DefaultPrefix)
	}
	if err := queue.ValidatePrefix(prefix); err != nil {
		return fmt.Errorf("--prefix: %w", err)
	}
	return nil
}

// conn is an open connection to one namespace of a Redis.
type conn struct {
	rdb    *redis.Client
	store  *queue.Store
	client *client.Client
	// where names the server for messages, without the password.
	where string
}

// Close closes the client and the Redis connection pool.
func (c *conn) Close() {
	_ = c.client.Close()
	_ = c.rdb.Close()
}

// connect resolves the flags, opens the connection and checks it with
// PING. Management commands do not let go-redis resend a command whose
// reply was lost (MaxRetries -1): a start or an event is then reported as
// an error instead of being sent twice.
func (c *connFlags) connect(ctx context.Context, cmd *cobra.Command, retries bool) (*conn, error) {
	c.resolve(cmd)
	opt, err := c.redisOptions()
	if err != nil {
		return nil, err
	}
	if err := validatePrefix(c.Prefix); err != nil {
		return nil, err
	}
	if !retries {
		opt.MaxRetries = -1
	}
	rdb := redis.NewClient(opt)
	where := redactURL(c.RedisURL)
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s: %w", where, err)
	}
	store := queue.New(rdb, queue.Options{Prefix: c.Prefix})
	return &conn{rdb: rdb, store: store, client: client.New(store), where: where}, nil
}

var userinfoRE = regexp.MustCompile(`//([^/@:]*):[^/@]*@`)

// redactURL hides the password of a Redis URL.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return userinfoRE.ReplaceAllString(raw, "//$1:xxxxx@")
}
