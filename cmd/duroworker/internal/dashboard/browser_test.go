package dashboard

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/duroworker/duroworker/client"
)

// chromiumPath finds the browser: $CHROMIUM, /usr/bin/chromium, or one on
// PATH. Without one the test is skipped, except under CI=true where it
// fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium"}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			candidates = append(candidates, p)
		}
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required in CI (.ci/run installs it): not at /usr/bin/chromium nor on PATH")
	}
	t.Skip("chromium not found (set CHROMIUM, or install it); the browser tests are skipped outside CI")
	return ""
}

// newBrowser starts a headless Chromium for the test and returns its tab.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short: no browser (under CI=true the browser tests always run)")
	}
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(width, height))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// step runs actions and fails the test with what on error.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// click clicks and waits for the page it loads.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// TestBrowser drives Chromium through the dashboard over a real
// redis-server: list, filter, open an instance and its history, an XSS id
// rendered as text, the live charts, requeue a dead letter and cancel with
// actions on, and a refused action with actions off.
func TestBrowser(t *testing.T) {
	began := time.Now()
	ctx := newBrowser(t, 1280, 900)
	f := newFixture(t, true, Config{AllowActions: true})
	f.start("greet-1", "Greet", "ada", true)
	f.start("wait-1", "Wait", "", false)
	f.start("wait-2", "Wait", "", false)
	f.start(xssID, "Greet", "<img src=x onerror=alert(2)>"+termEscape, true)
	dl := f.deadLetter("lost-1")
	base := f.srv.URL

	t.Run("list", func(t *testing.T) {
		step(t, ctx, "open the list", chromedp.Navigate(base+"/instances"), chromedp.WaitVisible(chromedp.CSS("#instances")))
		got := text(t, ctx, "#instances")
		for _, want := range []string{"greet-1", "wait-1", "lost-1", xssID, "Completed", "Running"} {
			if !strings.Contains(got, want) {
				t.Errorf("list: no %q in %q", want, got)
			}
		}
	})
	t.Run("filter", func(t *testing.T) {
		step(t, ctx, "fill the filter", chromedp.SetValue(chromedp.CSS("#f-id"), "wait-"), chromedp.SetValue(chromedp.CSS("#f-status"), "Running"))
		click(t, ctx, "#f-apply")
		got := text(t, ctx, "#instances")
		if !strings.Contains(got, "wait-1") || !strings.Contains(got, "wait-2") || strings.Contains(got, "greet-1") {
			t.Errorf("filtered list: %q", got)
		}
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		if !strings.Contains(loc, "status=Running") || !strings.Contains(loc, "id=wait-") {
			t.Errorf("the filter is not in the URL: %s", loc)
		}
	})
	t.Run("instance", func(t *testing.T) {
		step(t, ctx, "open the list", chromedp.Navigate(base+"/instances?name=Greet"), chromedp.WaitVisible(chromedp.CSS("#instances")))
		click(t, ctx, `a.iid[href^="/instances/greet-1"]`)
		if got := text(t, ctx, "#instance-id"); got != "greet-1" {
			t.Errorf("instance page of %q", got)
		}
		hist := text(t, ctx, "#history")
		for _, want := range []string{"OrchestrationStarted", "ActivityScheduled", "ActivityCompleted", "SubOrchestrationScheduled", "OrchestrationCompleted", "hello child(ADA)"} {
			if !strings.Contains(hist, want) {
				t.Errorf("history: no %q in %q", want, hist)
			}
		}
		if got := text(t, ctx, "#custom-status"); got != "<b>greeted</b> ada" {
			t.Errorf("custom status %q", got)
		}
		if got := text(t, ctx, "#executions"); !strings.Contains(got, "Completed") {
			t.Errorf("executions: %q", got)
		}
	})
	t.Run("xss", func(t *testing.T) {
		step(t, ctx, "open the list", chromedp.Navigate(base+"/instances"), chromedp.WaitVisible(chromedp.CSS("#instances")))
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.body.querySelectorAll("script, img").length`))
		if err != nil || n != 0 {
			t.Errorf("list: %d script or img elements in the body (%v)", n, err)
		}
		click(t, ctx, `a.iid[href^="/instances/%3Cscript"]`)
		if got := text(t, ctx, "#instance-id"); got != xssID {
			t.Errorf("the XSS id renders as %q", got)
		}
		if got := text(t, ctx, "#input"); got != `<img src=x onerror=alert(2)>\x1b[31mred\x1b]0;pwned\x07` {
			t.Errorf("hostile input renders as %q", got)
		}
		n, err = chromedp.Run(ctx, chromedp.Evaluate[int](`document.body.querySelectorAll("script, img").length`))
		if err != nil || n != 0 {
			t.Errorf("instance page: %d script or img elements in the body (%v)", n, err)
		}
	})
	t.Run("live", func(t *testing.T) {
		step(t, ctx, "overview", chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.CSS(`figure.chart[data-series="completions_per_sec"] svg polyline`)))
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('figure.chart[data-series="running"] .value').textContent`))
		if err != nil || v == "" {
			t.Errorf("running chart value %q (%v)", v, err)
		}
	})
	t.Run("requeue", func(t *testing.T) {
		step(t, ctx, "dead letters", chromedp.Navigate(base+"/dlq"), chromedp.WaitVisible(chromedp.CSS("#dlq")))
		if got := text(t, ctx, "#dlq"); !strings.Contains(got, dl) || !strings.Contains(got, "lost-1") {
			t.Fatalf("dead letters: %q", got)
		}
		click(t, ctx, "button.requeue")
		if got := text(t, ctx, "#summary"); !strings.Contains(got, "Requeue dead letter "+dl) {
			t.Errorf("confirmation: %q", got)
		}
		click(t, ctx, "#confirm-yes")
		if got := text(t, ctx, "#done"); got != "Requeued dead letter "+dl+"." {
			t.Errorf("after requeue: %q", got)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		step(t, ctx, "instance", chromedp.Navigate(base+"/instances/wait-1"), chromedp.WaitVisible(chromedp.CSS("#cancel")))
		step(t, ctx, "reason", chromedp.SetValue(chromedp.CSS(`input[name="reason"]`), "from the browser"))
		click(t, ctx, "#cancel")
		if got := text(t, ctx, "#summary"); got != "Cancel instance wait-1?" {
			t.Errorf("confirmation: %q", got)
		}
		if st, _ := f.client.Status(context.Background(), "wait-1"); st.State != client.StateRunning {
			t.Errorf("wait-1 before confirming: %s", st.State)
		}
		click(t, ctx, "#confirm-yes")
		if got := text(t, ctx, "#done"); got != "Asked instance wait-1 to cancel." {
			t.Errorf("after cancel: %q", got)
		}
		wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if st, err := f.client.Wait(wctx, "wait-1"); err != nil || st.State != client.StateFailed {
			t.Errorf("wait-1 after cancel: %+v %v", st, err)
		}
		click(t, ctx, "#done-link")
		if got := text(t, ctx, "#status"); got != "Failed" {
			t.Errorf("status shown after cancel: %q", got)
		}
	})
	t.Run("actions-off", func(t *testing.T) {
		off, err := New(Config{Namespaces: f.h.cfg.Namespaces})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(off)
		defer func() { srv.Close(); _ = off.Close() }()
		step(t, ctx, "read-only instance", chromedp.Navigate(srv.URL+"/instances/wait-2"), chromedp.WaitVisible(chromedp.CSS("#history")))
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('form[method="post"]').length`))
		if err != nil || n != 0 {
			t.Errorf("read-only page has %d action forms (%v)", n, err)
		}
		// A hand-made form, as a user or an extension could post it.
		_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
			const f = document.createElement("form");
			f.method = "post"; f.action = "/actions/cancel";
			for (const [k, v] of [["id", "wait-2"], ["ns", "dash"], ["confirm", "yes"]]) {
				const i = document.createElement("input"); i.name = k; i.value = v; f.appendChild(i);
			}
			document.body.appendChild(f); f.submit(); return true;
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		step(t, ctx, "refusal", chromedp.WaitVisible(chromedp.CSS("#error")))
		if got := text(t, ctx, "#error"); !strings.Contains(got, "actions are off") {
			t.Errorf("refusal: %q", got)
		}
		if st, _ := f.client.Status(context.Background(), "wait-2"); st.State != client.StateRunning {
			t.Errorf("wait-2 after a refused cancel: %s", st.State)
		}
	})
	t.Logf("browser tests took %s", time.Since(began).Round(time.Millisecond))
}

// TestScreenshots saves a PNG of every page of a running dashboard for
// docs/dashboard.md. It runs only when DUROWORKER_SCREENSHOTS names the
// dashboard (for example the one of `duroworker dev --serve --port 8088`)
// and DUROWORKER_SCREENSHOTS_DIR the output directory:
//
//	DUROWORKER_SCREENSHOTS=http://127.0.0.1:8088 DUROWORKER_SCREENSHOTS_DIR=$PWD/docs/img \
//	  go test ./cmd/duroworker/internal/dashboard -run TestScreenshots
func TestScreenshots(t *testing.T) {
	base, dir := os.Getenv("DUROWORKER_SCREENSHOTS"), os.Getenv("DUROWORKER_SCREENSHOTS_DIR")
	if base == "" || dir == "" {
		t.Skip("set DUROWORKER_SCREENSHOTS and DUROWORKER_SCREENSHOTS_DIR to take the screenshots")
	}
	ctx := newBrowser(t, 1200, 760)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"overview": "/", "instances": "/instances", "instance": "/instances/monitor-1",
		"fleet": "/fleet", "queues": "/queues", "dlq": "/dlq", "sessions": "/sessions",
	} {
		step(t, ctx, name, chromedp.Navigate(u.JoinPath(path).String()), chromedp.WaitVisible(chromedp.CSS("main")))
		if name == "overview" {
			step(t, ctx, "charts", chromedp.WaitVisible(chromedp.CSS("figure.chart svg polyline")))
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "dashboard-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
