package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/queue"
)

// defaultRedisURL is the --redis default when neither the flag nor
// DUROWORKER_REDIS is set.
const defaultRedisURL = "redis://127.0.0.1:6379/0"

// urlForm is the accepted form of --redis, for error messages.
const urlForm = "redis://[user:password@]host:port/db, or rediss:// for TLS"

// pingTimeout bounds the first PING that checks the connection.
const pingTimeout = 5 * time.Second

// loadingWait bounds how long a management command waits for a Redis that
// answers LOADING (it is reading its data set after a restart). A worker
// waits until it is stopped.
const loadingWait = 30 * time.Second

// connFlags are the root flags that say which Redis and namespace to use:
// --redis, --prefix and --tls-*, shared by every command that talks to
// Redis (bench has its own --redis).
type connFlags struct {
	RedisURL string
	Prefix   string
	// TLS names the CA, client certificate and server name of a rediss://
	// connection (--tls-ca, --tls-cert, --tls-key, --tls-server-name).
	TLS queue.TLSFiles
}

// addRootFlags adds the persistent flags of the root command: the
// connection flags, -o/--output and the hidden deprecated --json.
func addRootFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.String("redis", defaultRedisURL, "Redis URL: redis://[user:password@]host:port/db, or rediss:// for TLS")
	f.String("prefix", queue.DefaultPrefix, "key namespace shared by the workers and clients of one application")
	f.String("tls-ca", "", "rediss://: PEM file of the CA that signs the server's certificate (default: the system roots)")
	f.String("tls-cert", "", "rediss://: PEM file of a client certificate, for a server with tls-auth-clients (with --tls-key)")
	f.String("tls-key", "", "rediss://: PEM file of the client certificate's private key (with --tls-cert)")
	f.String("tls-server-name", "", "rediss://: name the server's certificate must carry (default: the URL's host)")
	out := outputTable
	f.VarP(&out, "output", "o", "output format of the results: table, json (one indented document) or jsonl (one object per line)")
	f.Bool("json", false, "same as -o json")
	deprecate(f.Lookup("json"), "use -o json")
}

// lookupFlag finds a flag of cmd: its own, or one it inherits.
func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f
	}
	return cmd.InheritedFlags().Lookup(name)
}

// flagString is the value of flag name of cmd, "" when it has none.
func flagString(cmd *cobra.Command, name string) string {
	if f := lookupFlag(cmd, name); f != nil {
		return f.Value.String()
	}
	return ""
}

// connectionFor returns the connection flags in effect for cmd: the root's
// --redis, --prefix and --tls-* after the environment was applied (flag >
// DUROWORKER_* > default). It is the one way a command learns which Redis
// to use; open the connection with its connect method, or use runWithConn.
func connectionFor(cmd *cobra.Command) *connFlags {
	return &connFlags{
		RedisURL: flagString(cmd, "redis"),
		Prefix:   flagString(cmd, "prefix"),
		TLS: queue.TLSFiles{
			CA:         flagString(cmd, "tls-ca"),
			Cert:       flagString(cmd, "tls-cert"),
			Key:        flagString(cmd, "tls-key"),
			ServerName: flagString(cmd, "tls-server-name"),
		},
	}
}

// redisOptions parses the Redis URL and applies the --tls-* flags. Its
// errors never show the password, and it refuses a URL without a host
// rather than letting go-redis dial localhost:6379.
func (c *connFlags) redisOptions() (*redis.Options, error) {
	opt, err := parseRedisURL(c.RedisURL)
	if err != nil {
		return nil, err
	}
	if c.TLS.IsZero() {
		return opt, nil
	}
	if opt.TLSConfig == nil {
		return nil, fmt.Errorf("--tls-ca, --tls-cert, --tls-key and --tls-server-name need a rediss:// URL, got %s", redactURL(c.RedisURL))
	}
	if opt.TLSConfig, err = c.TLS.Config(opt.TLSConfig); err != nil {
		return nil, fmt.Errorf("--tls-*: %w", err)
	}
	return opt, nil
}

// parseRedisURL parses a redis://, rediss:// or unix:// URL. Every error
// shows the URL redacted.
func parseRedisURL(raw string) (*redis.Options, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("--redis is empty: want a URL such as " + defaultRedisURL)
	}
	shown := redactURL(raw)
	bad := func(why string) error {
		return fmt.Errorf("--redis %s: %s (want %s)", shown, scrubSecret(why, raw, shown), urlForm)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		// The parser quotes the offending part, which may be a piece of
		// the password ("invalid URL escape \"%CR\""): leave it out.
		return nil, bad("not a valid URL: " + quotedRE.ReplaceAllString(err.Error(), "(...)"))
	}
	switch strings.ToLower(u.Scheme) {
	case "redis", "rediss":
		if u.Opaque != "" || u.Hostname() == "" {
			return nil, bad("no host: the URL must start with " + u.Scheme + "://HOST")
		}
	case "unix":
		if u.Path == "" {
			return nil, bad("no socket path: want unix:///path/to/redis.sock")
		}
	case "":
		return nil, bad("no scheme")
	default:
		return nil, bad(fmt.Sprintf("invalid URL scheme %q", u.Scheme))
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, bad(strings.TrimPrefix(err.Error(), "redis: "))
	}
	return opt, nil
}

// quotedRE matches the quoted parts of url.Parse errors.
var quotedRE = regexp.MustCompile(`"[^"]*"`)

// redactURL hides the credentials of a Redis URL: the password of a
// well-formed URL (redis://app:xxxxx@host), and of a malformed one
// ("redis:app:S3CRET@host" becomes "redis:app:xxxxx@host"; a user part
// without ':' is hidden whole).
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" && u.Host != "" &&
		!strings.Contains(u.Path+u.RawQuery+u.Fragment, "@") {
		return u.Redacted()
	}
	start, at := userinfoSpan(raw)
	if at < 0 {
		return raw
	}
	if user, _, ok := strings.Cut(raw[start:at], ":"); ok {
		return raw[:start] + user + ":xxxxx" + raw[at:]
	}
	return raw[:start] + "xxxxx" + raw[at:]
}

// userinfoSpan returns where the credentials of a possibly malformed URL
// start and end (the last '@'); at is -1 when there is no '@'.
func userinfoSpan(raw string) (start, at int) {
	at = strings.LastIndex(raw, "@")
	if at < 0 {
		return 0, -1
	}
	lower := strings.ToLower(raw)
	for _, scheme := range []string{"rediss:", "redis:", "unix:"} {
		if strings.HasPrefix(lower, scheme) {
			start = len(scheme)
			break
		}
	}
	for start < at && raw[start] == '/' {
		start++
	}
	return start, at
}

// scrubSecret removes the URL and its credentials from a parser's message.
func scrubSecret(msg, raw, shown string) string {
	msg = strings.ReplaceAll(msg, raw, shown)
	start, at := userinfoSpan(raw)
	if at < 0 {
		return msg
	}
	userinfo := raw[start:at]
	if _, pw, ok := strings.Cut(userinfo, ":"); ok {
		if pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return msg
	}
	if userinfo != "" {
		msg = strings.ReplaceAll(msg, userinfo, "xxxxx")
	}
	return msg
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

// connect opens the connection and checks it with
// PING, waiting while Redis answers LOADING.
//
// A worker passes its logger: go-redis may then resend a command whose
// reply was lost, and go-redis's own log lines go to the logger at debug
// level. Management commands pass nil: go-redis does not resend (MaxRetries
// -1), so a start or an event is reported as an error instead of being sent
// twice, and go-redis's log lines are dropped (errors are returned).
func (c *connFlags) connect(ctx context.Context, cmd *cobra.Command, logger *slog.Logger) (*conn, error) {
	opt, err := c.redisOptions()
	if err != nil {
		return nil, asUsage(err)
	}
	if err := validatePrefix(c.Prefix); err != nil {
		return nil, asUsage(err)
	}
	setRedisLogger(logger)
	if logger == nil {
		opt.MaxRetries = -1
	}
	rdb := redis.NewClient(opt)
	where := redactURL(c.RedisURL)
	if err := pingUntilLoaded(ctx, rdb, logger); err != nil {
		_ = rdb.Close()
		return nil, connectError(where, err, opt.TLSConfig != nil)
	}
	store := queue.New(rdb, queue.Options{Prefix: c.Prefix})
	if logger == nil {
		// Workers refuse an evicting Redis in worker.Start; a management
		// command only warns.
		if err := store.CheckEvictionPolicy(ctx); errors.Is(err, queue.ErrEvictingRedis) {
			fmt.Fprintf(cmd.ErrOrStderr(), "duroworker: warning: %v: stored instances may be lost\n", err)
		}
	}
	return &conn{rdb: rdb, store: store, client: client.New(store), where: where}, nil
}

// pingUntilLoaded sends PING until it answers. While Redis answers LOADING
// it tries again with backoff: until ctx ends for a worker (logger set), for
// at most loadingWait for a management command. Any other error is
// returned at once.
func pingUntilLoaded(ctx context.Context, rdb *redis.Client, logger *slog.Logger) error {
	began := time.Now()
	delay := 50 * time.Millisecond
	logged := false
	for {
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), "LOADING") {
			return err
		}
		if logger == nil && time.Since(began) > loadingWait {
			return fmt.Errorf("%w (still loading after %s)", err, loadingWait)
		}
		if logger != nil && !logged {
			logger.Warn("Redis is loading its data set; waiting for it", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up waiting: %v)", err, context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// connectError is the error of a failed first PING at where: a refusal of
// the credentials or a permission is said as such, anything else as
// "cannot reach Redis at WHERE: WHY", with raw Redis and network errors put
// into words and the likely cause of a TLS failure named.
func connectError(where string, err error, withTLS bool) error {
	raw, words := redisWords(err)
	switch {
	case strings.HasPrefix(raw, "WRONGPASS"), strings.HasPrefix(raw, "NOAUTH"), strings.Contains(raw, "invalid password"):
		return reword(err, "Redis at %s refused the credentials (check the user and password of the URL)", where)
	case strings.HasPrefix(raw, "NOPERM"):
		return reword(err, "Redis at %s: %s", where, words)
	case raw != "":
		return reword(err, "cannot reach Redis at %s: %s%s", where, words, connHint(err, withTLS))
	case errors.Is(err, context.DeadlineExceeded):
		return reword(err, "cannot reach Redis at %s: no answer within %s%s", where, pingTimeout, connHint(err, withTLS))
	}
	return reword(err, "cannot reach Redis at %s: %v%s", where, err, connHint(err, withTLS))
}

// connHint names the likely cause of a failed first PING, or is empty.
func connHint(err error, withTLS bool) string {
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknownCA) || (errors.As(err, &certErr) && errors.As(certErr.Err, &unknownCA)):
		return " (the server's certificate is signed by an authority this machine does not trust: pass its CA with --tls-ca)"
	case errors.As(err, &hostErr):
		return " (the server's certificate does not name this host: pass the name it carries with --tls-server-name)"
	case strings.Contains(msg, "tls: certificate required"):
		return " (the server requires a client certificate: pass it with --tls-cert and --tls-key)"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return " (the server does not speak TLS: use a redis:// URL)"
	case withTLS && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "i/o timeout")):
		return fmt.Sprintf(" (no answer to the TLS handshake within %s: if the server does not use TLS, use a redis:// URL)", pingTimeout)
	case !withTLS && (errors.Is(err, io.EOF) || strings.Contains(msg, "connection reset by peer")):
		return " (the server closed the connection at once: if it expects TLS, use a rediss:// URL)"
	}
	return ""
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
