package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/cmd/duroworker/internal/dashboard"
	"github.com/duroworker/duroworker/queue"
)

// Environment variables of `duroworker dashboard` that carry secrets, so
// that they need not appear on a command line.
const (
	envDashToken = "DUROWORKER_DASHBOARD_TOKEN"
	envDashBasic = "DUROWORKER_DASHBOARD_BASIC_AUTH"
)

// defaultDashboardListen is where the dashboard listens by default: the
// loopback interface only.
const defaultDashboardListen = "127.0.0.1:8088"

// dashboardOptions are the flags of `duroworker dashboard`.
type dashboardOptions struct {
	Listen         string
	AllowActions   bool
	TokenFile      string
	BasicAuthFile  string
	SampleInterval time.Duration
}

func newDashboardCommand() *cobra.Command {
	opts := dashboardOptions{Listen: defaultDashboardListen, SampleInterval: 2 * time.Second}
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the web dashboard of one or more namespaces",
		Long: `dashboard serves a web UI over the management API: an overview with live
charts, instances (filter, page, open one: executions and their versions, the
history as a timeline, custom status, key-value state, sub-orchestrations),
the fleet of worker nodes and what each serves, queue depths with the buckets
served by nobody, dead letters and sessions. Every page is also JSON under
/api/ (see docs/dashboard.md).

--prefix takes a comma-separated list to show several namespaces of the same
Redis. It listens on 127.0.0.1:8088 by default. On any other address it
refuses to start without credentials: a bearer token (--token-file or
$` + envDashToken + `, also accepted as the basic-auth password) or
basic auth (--basic-auth-file or $` + envDashBasic + `, "user:password").

Actions (start, raise event, cancel, delete, requeue and drop dead letters)
are off unless --allow-actions; each asks for confirmation and is protected
against cross-site requests.`,
		Example: `  duroworker dashboard --redis redis://127.0.0.1:6379/0 --prefix app
  duroworker dashboard --prefix app,billing --allow-actions
  DUROWORKER_DASHBOARD_TOKEN=$(cat /run/secrets/dash) duroworker dashboard --listen 0.0.0.0:8088`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDashboard(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Listen, "listen", opts.Listen, "address to serve on; anything but loopback needs credentials")
	f.BoolVar(&opts.AllowActions, "allow-actions", false, "enable start, raise event, cancel, delete and dead-letter requeue/drop (with confirmation)")
	f.StringVar(&opts.TokenFile, "token-file", "", "file holding the bearer token every request must carry (env "+envDashToken+")")
	f.StringVar(&opts.BasicAuthFile, "basic-auth-file", "", "file holding user:password for basic auth (env "+envDashBasic+")")
	f.DurationVar(&opts.SampleInterval, "sample-interval", opts.SampleInterval, "how often the live charts are sampled")
	return cmd
}

// dashboardNamespaces opens the namespaces of the root's --prefix, a
// comma-separated list, over one Redis connection.
func dashboardNamespaces(ctx context.Context, cmd *cobra.Command) ([]dashboard.Namespace, func(), error) {
	c := connectionFor(cmd)
	var prefixes []string
	for p := range strings.SplitSeq(c.Prefix, ",") {
		p = strings.TrimSpace(p)
		if err := validatePrefix(p); err != nil {
			return nil, nil, asUsage(err)
		}
		prefixes = append(prefixes, p)
	}
	c.Prefix = prefixes[0]
	cn, err := c.connect(ctx, cmd, nil)
	if err != nil {
		return nil, nil, err
	}
	var closers []func()
	nss := []dashboard.Namespace{{Prefix: prefixes[0], Client: cn.client, Store: cn.store}}
	for _, p := range prefixes[1:] {
		store := queue.New(cn.rdb, queue.Options{Prefix: p})
		cl := client.New(store)
		closers = append(closers, func() { _ = cl.Close() })
		nss = append(nss, dashboard.Namespace{Prefix: p, Client: cl, Store: store})
	}
	return nss, func() {
		for _, f := range closers {
			f()
		}
		cn.Close()
	}, nil
}

func runDashboard(cmd *cobra.Command, opts dashboardOptions) error {
	cfg := dashboard.Config{AllowActions: opts.AllowActions, SampleEvery: opts.SampleInterval}
	var err error
	if cfg.Token, err = secret(opts.TokenFile, envDashToken, "--token-file"); err != nil {
		return err
	}
	basic, err := secret(opts.BasicAuthFile, envDashBasic, "--basic-auth-file")
	if err != nil {
		return err
	}
	if basic != "" {
		var ok bool
		if cfg.User, cfg.Password, ok = strings.Cut(basic, ":"); !ok || cfg.User == "" || cfg.Password == "" {
			return usagef("basic auth: want user:password")
		}
	}
	if err := checkListen(opts.Listen, cfg.HasAuth()); err != nil {
		return asUsage(err)
	}
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	// Until SIGINT/SIGTERM: then the server shuts down and the
	// connections close before the command exits 0.
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	nss, closeAll, err := dashboardNamespaces(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeAll()
	cfg.Namespaces = nss
	return serveDashboard(ctx, opts.Listen, cfg, cmd.OutOrStdout())
}

// secret reads a secret from a file (trailing newline dropped) or from an
// environment variable.
func secret(file, env, flag string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", flag, err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("%s: %s is empty", flag, file)
		}
		return s, nil
	}
	return os.Getenv(env), nil
}

// checkListen refuses an address that is not loopback when no credentials
// are configured.
func checkListen(addr string, hasAuth bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if hasAuth || dashboard.LoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("--listen %s is not a loopback address: refusing to serve the dashboard without credentials (set %s or --token-file, or %s or --basic-auth-file)", addr, envDashToken, envDashBasic)
}

// serveDashboard serves the dashboard on addr until ctx ends, printing its
// URL on out.
func serveDashboard(ctx context.Context, addr string, cfg dashboard.Config, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	return serveDashboardOn(ctx, ln, cfg, func(url string) {
		mode := "read-only"
		if cfg.AllowActions {
			mode = "actions on"
		}
		fmt.Fprintf(out, "dashboard: serving %s (%s); Ctrl-C to stop\n", url, mode)
	})
}

// serveDashboardOn serves the dashboard on ln until ctx ends; ready is
// called with its URL once it listens.
func serveDashboardOn(ctx context.Context, ln net.Listener, cfg dashboard.Config, ready func(url string)) error {
	h, err := dashboard.New(cfg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer h.Close()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready("http://" + ln.Addr().String() + "/")
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}
