package dashboard

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// Hostile values the pages must render as text.
const (
	xssID      = `<script>alert(1)</script>`
	bidiID     = "invoice-\u202etxt.exe"
	termEscape = "\x1b[31mred\x1b]0;pwned\x07"
)

// fixture is a dashboard over a namespace of a Redis, with a worker that
// runs the test orchestrations.
type fixture struct {
	t      *testing.T
	rdb    *redis.Client
	store  *queue.Store
	client *client.Client
	h      *Handler
	srv    *httptest.Server
	http   *http.Client
}

// testOrchestrations: Greet calls an activity and a child, sets a custom
// status and a key; Wait waits for event "go"; "Missing" is never
// registered, so starting it ends in the dead-letter queue.
func testRegistries(t *testing.T) (*engine.OrchestrationRegistry, *engine.ActivityRegistry) {
	orchs := engine.NewOrchestrationRegistry().
		Register("Greet", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			up, err := ctx.ScheduleActivity("Upper", in).Get()
			if err != nil {
				return "", err
			}
			if err := ctx.SetCustomStatus("<b>greeted</b> " + in); err != nil {
				return "", err
			}
			if err := ctx.SetKV("last", in); err != nil {
				return "", err
			}
			child, err := ctx.ScheduleSubOrchestration("Child", up).Get()
			if err != nil {
				return "", err
			}
			return "hello " + child, nil
		}).
		Register("Child", func(ctx *engine.OrchestrationContext, in string) (string, error) { return "child(" + in + ")", nil }).
		Register("Wait", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.WaitForEvent("go").Get()
		}).MustBuild()
	acts := engine.NewActivityRegistry().
		Register("Upper", func(ctx *engine.ActivityContext, in string) (string, error) { return strings.ToUpper(in), nil }).MustBuild()
	return orchs, acts
}

// newFixture starts a real redis-server (real: true) or a miniredis, a
// worker and the dashboard configured by cfg.
func newFixture(t *testing.T, real bool, cfg Config) *fixture {
	t.Helper()
	f := &fixture{t: t}
	if real {
		f.rdb = redistest.Start(t).Client(t)
	} else {
		_, f.rdb = redistest.StartMini(t)
	}
	f.store = queue.New(f.rdb, queue.Options{Prefix: "dash"})
	f.client = client.New(f.store)
	t.Cleanup(func() { _ = f.client.Close() })
	orchs, acts := testRegistries(t)
	w, err := worker.New(f.store, orchs, acts, worker.Options{NodeID: "node-1", MaxAttempts: 2, Logger: slog.New(slog.DiscardHandler),
		UnregisteredBackoffBase: 10 * time.Millisecond, UnregisteredBackoffMax: 50 * time.Millisecond,
		NodeHeartbeat: 50 * time.Millisecond, BlockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
	if len(cfg.Namespaces) == 0 {
		cfg.Namespaces = []Namespace{{Prefix: "dash", Client: f.client, Store: f.store}}
	}
	if cfg.SampleEvery == 0 {
		cfg.SampleEvery = 100 * time.Millisecond
	}
	f.h, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.h.Close() })
	srvFixture(f)
	return f
}

// srvFixture serves f.h and gives f a client with a cookie jar.
func srvFixture(f *fixture) {
	f.srv = httptest.NewServer(f.h)
	f.t.Cleanup(f.srv.Close)
	jar, _ := cookiejar.New(nil)
	f.http = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// start starts an orchestration and, unless wait is false, waits for it.
func (f *fixture) start(id, name, input string, wait bool) client.Status {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.client.Start(ctx, id, name, input); err != nil {
		f.t.Fatalf("start %q: %v", id, err)
	}
	if !wait {
		return client.Status{}
	}
	st, err := f.client.Wait(ctx, id)
	if err != nil {
		f.t.Fatalf("wait %q: %v", id, err)
	}
	return st
}

// deadLetter starts an orchestration no worker has and waits until it is
// dead-lettered; it returns the dead letter's id.
func (f *fixture) deadLetter(id string) string {
	f.t.Helper()
	f.start(id, "Missing", "lost", false)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		dls, err := f.client.ListDeadLetters(context.Background(), "", 100)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, d := range dls {
			if d.InstanceID == id {
				return d.ID
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("%s never reached the dead-letter queue", id)
	return ""
}

// get fetches a path and returns the status, the body and the response.
func (f *fixture) get(path string, hdr ...string) (int, string, *http.Response) {
	f.t.Helper()
	req, err := http.NewRequest("GET", f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return f.do(req)
}

func (f *fixture) do(req *http.Request) (int, string, *http.Response) {
	f.t.Helper()
	resp, err := f.http.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf loads a page to get the CSRF cookie and returns the form token.
func (f *fixture) csrf() string {
	f.t.Helper()
	_, body, _ := f.get("/dlq")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		// read-only pages carry no form; the token is the cookie
		u, _ := url.Parse(f.srv.URL)
		for _, c := range f.http.Jar.Cookies(u) {
			if c.Name == csrfCookie {
				return c.Value
			}
		}
		f.t.Fatal("no CSRF token")
	}
	return m[1]
}

// post submits an action form.
func (f *fixture) post(action string, form url.Values, hdr ...string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest("POST", f.srv.URL+"/actions/"+action, strings.NewReader(form.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	code, body, _ := f.do(req)
	return code, body
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
