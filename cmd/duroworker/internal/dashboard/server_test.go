package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s: no %q in:\n%.3000s", what, w, body)
		}
	}
}

func mustNotContain(t *testing.T, what, body string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(body, b) {
			t.Errorf("%s: %q must not appear in:\n%.3000s", what, b, body)
		}
	}
}

// TestPagesAndAPI renders every page and API endpoint over a real
// redis-server with completed, waiting, nested and dead-lettered instances.
func TestPagesAndAPI(t *testing.T) {
	f := newFixture(t, true, Config{})
	if st := f.start("greet-1", "Greet", "ada", true); st.State != client.StateCompleted || st.Output != "hello child(ADA)" {
		t.Fatalf("greet-1: %+v", st)
	}
	f.start("wait-1", "Wait", "", false)
	dl := f.deadLetter("lost-1")

	type check struct {
		path  string
		wants []string
	}
	for _, c := range []check{
		{"/", []string{"<title>Overview · duroworker</title>", "Namespace <a", "live nodes", "dead letters", `data-series="completions_per_sec"`}},
		{"/instances", []string{"greet-1", "wait-1", "lost-1", `href="/instances/greet-1?ns=dash"`}},
		{"/instances/greet-1", []string{"Instance <span id=\"instance-id\" class=\"iid\">greet-1</span>", "Completed", "ActivityScheduled",
			"SubOrchestrationScheduled", "OrchestrationCompleted", "result: hello child(ADA)", "&lt;b&gt;greeted&lt;/b&gt; ada", `<th>last</th>`, "Sub-orchestrations", "Greet", "input</th><td><pre id=\"input\">ada</pre>"}},
		{"/fleet", []string{"node-1", "Greet <span class=\"versions\"><span class=\"badge\" title=\"takes starts whose version its policy picks\">policy</span>", "Upper", "Instances per orchestration version", "Wait"}},
		{"/queues", []string{"Orchestration buckets", "Activity buckets"}},
		{"/dlq", []string{dl, "lost-1", "poison"}},
		{"/dlq/" + dl, []string{"Dead letter " + dl, "lost-1", "attempts"}},
		{"/sessions", []string{"node-1", "sessions held"}},
		{"/sessions?owner=node-1", []string{"Held by node-1"}},
	} {
		code, body, resp := f.get(c.path)
		if code != 200 {
			t.Errorf("GET %s: %d\n%.2000s", c.path, code, body)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", c.path, ct)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: CSP %q", c.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", c.path)
		}
		mustContain(t, c.path, body, c.wants...)
		mustNotContain(t, c.path, body, "<script>", "onclick=", "javascript:")
	}
	// The sub-orchestration of greet-1 is linked from its tree.
	tree := f.apiGet("/api/instances/greet-1?ns=dash")
	children := tree["tree"].(map[string]any)["children"].([]any)
	if len(children) != 1 || children[0].(map[string]any)["name"] != "Child" {
		t.Errorf("tree of greet-1: %v", tree["tree"])
	}
	execs := tree["executions"].([]any)
	// each execution's version and engine come from its first event
	if len(execs) != 1 || execs[0].(map[string]any)["version"] == "" || execs[0].(map[string]any)["engine"] == "" {
		t.Errorf("executions of greet-1: %v", execs)
	}

	// Every page as JSON.
	for _, p := range []string{"/api/overview", "/api/instances", "/api/instances/greet-1", "/api/fleet", "/api/queues", "/api/dlq", "/api/dlq/" + dl, "/api/sessions?owner=node-1", "/api/live"} {
		code, body, resp := f.get(p)
		if code != 200 || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("GET %s: %d %s\n%.1000s", p, code, resp.Header.Get("Content-Type"), body)
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Errorf("GET %s: %v", p, err)
		}
	}
	ov := f.apiGet("/api/overview")
	ns := ov["namespaces"].([]any)[0].(map[string]any)
	if ns["prefix"] != "dash" || ns["dead_letters"].(float64) != 1 || ns["live_nodes"].(float64) != 1 {
		t.Errorf("overview: %v", ns)
	}
	fl := f.apiGet("/api/fleet")
	if n := fl["nodes"].([]any); len(n) != 1 || n[0].(map[string]any)["ID"] != "node-1" {
		t.Errorf("fleet nodes: %v", fl["nodes"])
	}
	var waitRunning bool
	for _, v := range fl["versions"].([]any) {
		m := v.(map[string]any)
		waitRunning = waitRunning || (m["name"] == "Wait" && m["running"].(float64) == 1 && len(m["served_by"].([]any)) == 1)
	}
	if !waitRunning {
		t.Errorf("fleet versions: %v", fl["versions"])
	}

	// Errors: unknown instance, dead letter, namespace, page; bad input.
	for p, want := range map[string]int{
		"/instances/nope": 404, "/api/instances/nope": 404, "/dlq/1-0": 404, "/api/dlq/bad": 400,
		"/instances?ns=other": 404, "/api/nothing": 404, "/nothing": 404,
		"/api/instances?status=Weird": 400, "/api/instances?cursor=-1": 400, "/api/instances?from=yesterday": 400,
		"/instances/greet-1?execution=zero": 400, "/api/instances/greet-1?execution=9": 404,
	} {
		code, body, resp := f.get(p)
		if code != want {
			t.Errorf("GET %s: %d, want %d\n%.500s", p, code, want, body)
		}
		if strings.HasPrefix(p, "/api/") && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: error not JSON: %s", p, resp.Header.Get("Content-Type"))
		}
	}
	code, body, resp := f.get("/static/app.js")
	if code != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(body, "textContent") {
		t.Errorf("app.js: %d %s", code, resp.Header.Get("Content-Type"))
	}
	if code, _, _ := f.get("/static/style.css"); code != 200 {
		t.Errorf("style.css: %d", code)
	}
}

func (f *fixture) apiGet(path string) map[string]any {
	f.t.Helper()
	code, body, _ := f.get(path)
	if code != 200 {
		f.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

// TestInstanceFilters checks every filter of /api/instances and its
// cursors.
func TestInstanceFilters(t *testing.T) {
	f := newFixture(t, false, Config{})
	for i := range 12 {
		f.start(fmt.Sprintf("g-%02d", i), "Greet", "x", true)
	}
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	for i := range 3 {
		f.start(fmt.Sprintf("w-%d", i), "Wait", "", false)
	}
	waitFor(t, "w-* running", func() bool {
		m, _ := f.client.GetSystemMetrics(context.Background())
		return m.Running == 3
	})
	ids := func(path string) ([]string, map[string]any) {
		v := f.apiGet(path)
		var out []string
		for _, in := range v["instances"].([]any) {
			out = append(out, in.(map[string]any)["InstanceID"].(string))
		}
		return out, v
	}
	if got, v := ids("/api/instances?status=Running"); len(got) != 3 || v["scanning"] != false {
		t.Errorf("status=Running: %v %v", got, v)
	}
	if got, _ := ids("/api/instances?name=Child"); len(got) != 12 {
		t.Errorf("name=Child: %v", got)
	}
	if got, v := ids("/api/instances?id=w-"); len(got) != 3 || v["scanning"] != true {
		t.Errorf("id=w-: %v", got)
	}
	if got, _ := ids("/api/instances?name=Wait&version=9.9.9"); len(got) != 0 {
		t.Errorf("version filter: %v", got)
	}
	from := url.QueryEscape(mid.UTC().Format(time.RFC3339Nano))
	if got, _ := ids("/api/instances?from=" + from); len(got) != 3 || got[0] != "w-0" {
		t.Errorf("from: %v", got)
	}
	if got, _ := ids("/api/instances?status=Completed&to=" + from); len(got) != 24 {
		t.Errorf("to: %d %v", len(got), got)
	}
	// pageAll follows the next cursors of query from 0 with pages of
	// limit and returns every id listed, checking that each is listed once
	// and that no page is longer than limit.
	pageAll := func(query string, limit int) map[string]bool {
		seen := map[string]bool{}
		cursor := "0"
		for pages := 0; cursor != "-1"; pages++ {
			got, v := ids(fmt.Sprintf("/api/instances?%s&limit=%d&cursor=%s", query, limit, cursor))
			if len(got) > limit {
				t.Errorf("%s: a page of %d rows, limit %d", query, len(got), limit)
			}
			for _, id := range got {
				if seen[id] {
					t.Errorf("%s: %s listed twice", query, id)
				}
				seen[id] = true
			}
			cursor = fmt.Sprint(v["next"])
			if pages > 30 {
				t.Fatalf("%s: paging does not end", query)
			}
		}
		return seen
	}
	// Cursor paging: pages of 10 cover all 27 once; a scan's pages of 5
	// cover the 12 matches once.
	if seen := pageAll("ns=dash", 10); len(seen) != 27 {
		t.Errorf("paging saw %d instances, want 27", len(seen))
	}
	scanned := pageAll("name=Greet", 5)
	for id := range scanned {
		if !strings.HasPrefix(id, "g-") {
			t.Errorf("name=Greet listed %s", id)
		}
	}
	if len(scanned) != 12 {
		t.Errorf("name=Greet paging saw %d instances, want 12", len(scanned))
	}
	// Only an unfiltered listing links to its newest page.
	_, body, _ := f.get("/instances?ns=dash&status=Completed")
	mustNotContain(t, "newest link under a status filter", body, `id="last"`)
	_, body, _ = f.get("/instances?ns=dash")
	mustContain(t, "newest link", body, `id="last"`)
	_, body, _ = f.get("/instances?ns=dash&id=w-")
	mustContain(t, "scan note", body, "checked instance by instance", "this page read")
	_, body, _ = f.get("/instances?ns=dash&limit=10")
	mustContain(t, "next link", body, `id="next" href="/instances?cursor=10&amp;limit=10&amp;ns=dash"`)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEscaping renders hostile ids and payloads: HTML escapes them, control
// and bidi characters show as escapes, and the JSON API never carries raw
// HTML.
func TestEscaping(t *testing.T) {
	f := newFixture(t, false, Config{AllowActions: true})
	f.start(xssID, "Greet", "<img src=x onerror=alert(2)>"+termEscape, true)
	f.start(bidiID, "Wait", "", false)
	for _, p := range []string{"/instances", "/instances/" + url.PathEscape(xssID), "/instances?id=" + url.QueryEscape("<script>"), "/fleet"} {
		code, body, _ := f.get(p)
		if code != 200 {
			t.Fatalf("GET %s: %d", p, code)
		}
		mustNotContain(t, p, body, "<script>alert(1)", "<img src=x", "\x1b", "\u202e", "onerror=alert(2)>")
	}
	_, body, _ := f.get("/instances/" + url.PathEscape(xssID))
	mustContain(t, "instance page", body, "&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", `\x1b[31mred\x1b]0;pwned\x07`,
		`href="/api/instances/%3Cscript%3Ealert%281%29%3C%2Fscript%3E?ns=dash"`)
	_, body, _ = f.get("/instances")
	mustContain(t, "list", body, `invoice-\u202etxt.exe`, `href="/instances/%3Cscript%3Ealert%281%29%3C%2Fscript%3E?ns=dash"`)
	// The error page of an unknown id reflects it escaped.
	_, body, _ = f.get("/instances/" + url.PathEscape("<svg onload=alert(3)>"))
	mustNotContain(t, "error page", body, "<svg")
	// JSON: no raw '<' anywhere.
	for _, p := range []string{"/api/instances", "/api/instances/" + url.PathEscape(xssID), "/api/instances/" + url.PathEscape("<svg onload=alert(3)>")} {
		_, body, resp := f.get(p)
		if strings.ContainsAny(body, "<>") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s reflects HTML: %.500s", p, body)
		}
	}
	// The confirmation page of an action escapes what it repeats.
	tok := f.csrf()
	code, body := f.post("raise", url.Values{"csrf": {tok}, "ns": {"dash"}, "id": {xssID}, "name": {"<b>ev</b>"}, "data": {"<i>x</i>"}})
	if code != 200 {
		t.Fatalf("confirm: %d %s", code, body)
	}
	mustNotContain(t, "confirm page", body, "<b>ev</b>", "<i>x</i>", "<script>alert")
	mustContain(t, "confirm page", body, "&lt;b&gt;ev&lt;/b&gt;")
}

// TestVisible shows control, bidi and invalid characters as escapes.
func TestPathID(t *testing.T) {
	for in, want := range map[string]string{"a/b": "a%2Fb", "..": "%2E%2E", ".": "%2E", "x/../y": "x%2F..%2Fy", "q?x#f": "q%3Fx%23f", "v1.2": "v1.2"} {
		if got := pathID(in); got != want {
			t.Errorf("pathID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAuth requires the bearer token or basic auth on every path.
func TestAuth(t *testing.T) {
	f := newFixture(t, false, Config{Token: "s3cret-token", User: "ops", Password: "pw"})
	basic := func(u, p string) string {
		return "Basic " + base64Std(u+":"+p)
	}
	for _, p := range []string{"/", "/api/overview", "/static/app.js", "/instances/x", "/api/live"} {
		if code, _, resp := f.get(p); code != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without credentials: %d", p, code)
		}
		for _, bad := range []string{"Bearer wrong", "Bearer ", basic("ops", "nope"), basic("x", "pw"), "s3cret-token"} {
			if code, _, _ := f.get(p, "Authorization", bad); code != 401 {
				t.Errorf("GET %s with %q: %d", p, bad, code)
			}
		}
		for _, good := range []string{"Bearer s3cret-token", basic("ops", "pw"), basic("anyone", "s3cret-token")} {
			if code, _, _ := f.get(p, "Authorization", good); code != 200 && code != 404 {
				t.Errorf("GET %s with %q: %d", p, good, code)
			}
		}
	}
	if code, _ := f.post("cancel", url.Values{"id": {"x"}}); code != 401 {
		t.Errorf("POST without credentials: %d", code)
	}
	if _, err := New(Config{Namespaces: f.h.cfg.Namespaces, User: "only-user"}); err == nil {
		t.Error("New accepted a user without a password")
	}
}

// TestHostWithoutCredentials: without credentials only a loopback Host is
// served (a page whose name was rebound to 127.0.0.1 is refused); with
// credentials any Host is, once authenticated.
func TestHostWithoutCredentials(t *testing.T) {
	f := newFixture(t, false, Config{})
	get := func(host string, hdr ...string) int {
		req, err := http.NewRequest("GET", f.srv.URL+"/api/overview", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		code, _, _ := f.do(req)
		return code
	}
	for host, want := range map[string]int{
		"127.0.0.1:8088": 200, "localhost:8088": 200, "LOCALHOST": 200, "[::1]:8088": 200, "127.1.2.3": 200,
		"evil.example:8088": http.StatusMisdirectedRequest, "evil.example": http.StatusMisdirectedRequest,
		"10.0.0.5:8088": http.StatusMisdirectedRequest, "localhost.evil.example": http.StatusMisdirectedRequest,
	} {
		if got := get(host); got != want {
			t.Errorf("no credentials, Host %s: %d, want %d", host, got, want)
		}
	}
	authed := newFixture(t, false, Config{Token: "tok"})
	f = authed
	if got := get("dash.example.com", "Authorization", "Bearer tok"); got != 200 {
		t.Errorf("with credentials, another Host: %d", got)
	}
	if got := get("dash.example.com"); got != 401 {
		t.Errorf("with credentials, another Host, no token: %d", got)
	}
}

// TestActionsOff refuses every action, even with a valid CSRF token.
func TestActionsOff(t *testing.T) {
	f := newFixture(t, false, Config{})
	f.start("wait-off", "Wait", "", false)
	_, body, _ := f.get("/instances/wait-off")
	mustNotContain(t, "read-only instance page", body, `action="/actions/`)
	mustContain(t, "read-only", body, "read-only")
	tok := f.csrf()
	for _, a := range []string{"start", "raise", "cancel", "delete", "requeue", "drop"} {
		code, body := f.post(a, url.Values{"csrf": {tok}, "ns": {"dash"}, "id": {"wait-off"}, "name": {"Wait"}, "confirm": {"yes"}})
		if code != 403 || !strings.Contains(body, "actions are off") {
			t.Errorf("POST %s with actions off: %d %.300s", a, code, body)
		}
	}
	if st, _ := f.client.Status(context.Background(), "wait-off"); st.State == client.StateFailed || st.State == client.StateNotFound {
		t.Errorf("wait-off changed: %+v", st)
	}
}

// TestCSRF refuses actions without the cookie's token or from elsewhere.
func TestCSRF(t *testing.T) {
	f := newFixture(t, false, Config{AllowActions: true})
	f.start("wait-csrf", "Wait", "", false)
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "ns": {"dash"}, "id": {"wait-csrf"}, "confirm": {"yes"}}
	}
	// No cookie yet.
	if code, body := f.post("cancel", form("whatever")); code != 403 || !strings.Contains(body, "CSRF") {
		t.Errorf("no cookie: %d %.300s", code, body)
	}
	tok := f.csrf()
	for name, c := range map[string]struct {
		form url.Values
		hdr  []string
	}{
		"no token":        {url.Values{"ns": {"dash"}, "id": {"wait-csrf"}, "confirm": {"yes"}}, nil},
		"wrong token":     {form(tok + "x"), nil},
		"cross-site":      {form(tok), []string{"Sec-Fetch-Site", "cross-site"}},
		"other origin":    {form(tok), []string{"Origin", "https://evil.example"}},
		"same-site other": {form(tok), []string{"Sec-Fetch-Site", "same-site"}},
	} {
		if code, body := f.post("cancel", c.form, c.hdr...); code != 403 {
			t.Errorf("%s: %d %.300s", name, code, body)
		}
	}
	if st, _ := f.client.Status(context.Background(), "wait-csrf"); st.State != client.StateRunning && st.State != client.StatePending {
		t.Fatalf("wait-csrf changed by a refused action: %+v", st)
	}
	// The same request with the right token and origin goes through.
	if code, body := f.post("cancel", form(tok), "Origin", f.srv.URL, "Sec-Fetch-Site", "same-origin"); code != 200 || !strings.Contains(body, "Asked instance wait-csrf to cancel") {
		t.Errorf("valid cancel: %d %.500s", code, body)
	}
}

// TestActions runs every action: without confirm=yes it only asks.
func TestActions(t *testing.T) {
	f := newFixture(t, true, Config{AllowActions: true})
	ctx := context.Background()
	tok := f.csrf()
	post := func(action string, kv ...string) (int, string) {
		t.Helper()
		v := url.Values{"csrf": {tok}, "ns": {"dash"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return f.post(action, v)
	}
	// Start: asks first.
	code, body := post("start", "name", "Greet", "id", "act-1", "input", "bo")
	if code != 200 || !strings.Contains(body, "Start Greet as instance act-1") || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("start confirm: %d %.1000s", code, body)
	}
	if st, _ := f.client.Status(ctx, "act-1"); st.State != client.StateNotFound {
		t.Fatalf("started before confirmation: %+v", st)
	}
	if code, body = post("start", "name", "Greet", "id", "act-1", "input", "bo", "confirm", "yes"); code != 200 || !strings.Contains(body, "Started instance act-1") {
		t.Fatalf("start: %d %.500s", code, body)
	}
	if st, err := f.client.Wait(ctx, "act-1"); err != nil || st.Output != "hello child(BO)" {
		t.Fatalf("act-1: %+v %v", st, err)
	}
	// Raise.
	f.start("act-2", "Wait", "", false)
	if code, body = post("raise", "id", "act-2", "name", "go", "data", "went", "confirm", "yes"); code != 200 {
		t.Fatalf("raise: %d %.500s", code, body)
	}
	if st, err := f.client.Wait(ctx, "act-2"); err != nil || st.Output != "went" {
		t.Fatalf("act-2: %+v %v", st, err)
	}
	// Cancel.
	f.start("act-3", "Wait", "", false)
	if code, body = post("cancel", "id", "act-3", "reason", "test", "confirm", "yes"); code != 200 {
		t.Fatalf("cancel: %d %.500s", code, body)
	}
	if st, err := f.client.Wait(ctx, "act-3"); err != nil || st.State != client.StateFailed {
		t.Fatalf("act-3: %+v %v", st, err)
	}
	// Delete: refused while running without force; an error page, not a 500.
	f.start("act-4", "Wait", "", false)
	if code, body = post("delete", "id", "act-4", "confirm", "yes"); code != 409 || !strings.Contains(body, "delete failed") {
		t.Errorf("delete running: %d %.500s", code, body)
	}
	if code, body = post("delete", "id", "act-4", "force", "1", "confirm", "yes"); code != 200 || !strings.Contains(body, "Deleted act-4") {
		t.Errorf("delete --force: %d %.500s", code, body)
	}
	if st, _ := f.client.Status(ctx, "act-4"); st.State != client.StateNotFound {
		t.Errorf("act-4 after delete: %+v", st)
	}
	// Requeue and drop a dead letter.
	dl := f.deadLetter("act-5")
	if code, body = post("requeue", "id", dl); code != 200 || !strings.Contains(body, "Requeue dead letter "+dl) {
		t.Errorf("requeue confirm: %d %.500s", code, body)
	}
	if code, body = post("requeue", "id", dl, "confirm", "yes"); code != 200 || !strings.Contains(body, "Requeued dead letter "+dl) {
		t.Fatalf("requeue: %d %.500s", code, body)
	}
	var second string
	waitFor(t, "act-5 poisoned again", func() bool {
		dls, _ := f.client.ListDeadLetters(ctx, "", 100)
		for _, d := range dls {
			if d.InstanceID == "act-5" && d.ID != dl {
				second = d.ID
			}
		}
		return second != ""
	})
	if code, body = post("drop", "id", second, "confirm", "yes"); code != 200 || !strings.Contains(body, "Dropped dead letter") {
		t.Fatalf("drop: %d %.500s", code, body)
	}
	if dls, _ := f.client.ListDeadLetters(ctx, "", 100); len(dls) != 0 {
		t.Errorf("dead letters after drop: %+v", dls)
	}
	if code, _ = post("explode", "id", "x"); code != 404 {
		t.Errorf("unknown action: %d", code)
	}
	if code, _ = post("cancel", "id", "", "confirm", "yes"); code != 400 {
		t.Errorf("cancel without id: %d", code)
	}
}

// TestNamespaces shows several namespaces and the live numbers of each.
func TestNamespaces(t *testing.T) {
	_, rdb := redistest.StartMini(t)
	var nss []Namespace
	for _, p := range []string{"alpha", "beta"} {
		c := client.New(queue.New(rdb, queue.Options{Prefix: p}))
		t.Cleanup(func() { _ = c.Close() })
		nss = append(nss, Namespace{Prefix: p, Client: c})
	}
	if err := nss[1].Client.Start(context.Background(), "b-1", "Nobody", ""); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, false, Config{Namespaces: nss})
	_, body, _ := f.get("/")
	mustContain(t, "overview", body, `Namespace <a href="/?ns=alpha">alpha</a>`, `Namespace <a href="/?ns=beta">beta</a>`)
	if _, body, _ = f.get("/api/instances?ns=beta"); !strings.Contains(body, "b-1") {
		t.Errorf("beta instances: %s", body)
	}
	if _, body, _ = f.get("/api/instances?ns=alpha"); strings.Contains(body, "b-1") {
		t.Errorf("alpha lists beta's instance: %s", body)
	}
	_, body, _ = f.get("/sessions?ns=beta&owner=x")
	mustContain(t, "sessions without a store", body, "no store handle")
	waitFor(t, "live samples", func() bool {
		v := f.apiGet("/api/live?ns=beta")
		return len(v["points"].([]any)) >= 2
	})
	if _, err := New(Config{Namespaces: []Namespace{nss[0], nss[0]}}); err == nil {
		t.Error("New accepted a namespace twice")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted no namespace")
	}
}
