package queue

// The Lua key names tested against keys.go. Every script of lua/ documents
// its KEYS in its header, one "KEYS[n] <name>" entry each, on lines that
// start with "-- KEYS[":
//
//	-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] inbox:<id>
//	-- KEYS[5] req:<request id> (only with a request id)
//	-- KEYS[3+i] ready:<bucket i> for i = 1..n (distinct buckets)
//
// A name is a key kind with placeholders in angle brackets, after the
// prefix; "(only with ...)" marks a key the caller may leave out (at the
// end), "KEYS[n+i]" a variable tail of keys of one pattern.
// TestLuaKeysMatchCallers runs every call site of every script and checks
// the keys that reach the server, built by keys.go, against those headers;
// TestLuaKeyHelpersMatchKeys checks the names common.lua derives from
// KEYS[1] against keys.go.

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// keySpec is one documented entry of a script's KEYS.
type keySpec struct {
	index    string // "2", or "3+i" for a variable tail
	name     string // "prefix", "inst:<id>", "bystatus:Completed", ...
	optional bool   // "(only with ...)": the caller may leave it out
}

// keyDoc is the documented KEYS of one script.
type keyDoc struct {
	fixed []keySpec // KEYS[1..len(fixed)]
	tail  *keySpec  // KEYS[len(fixed)+i], i = 1..n, or nil
}

var (
	keysEntry = regexp.MustCompile(`KEYS\[([0-9]+(?:\+i)?)\]`)
	keyName   = regexp.MustCompile(`^((?:[^\s<]|<[^>]*>)+)\s*(.*)$`)
	keysUse   = regexp.MustCompile(`KEYS\[([0-9]+)\]`)
)

// parseKeyDoc reads the KEYS entries of a script's header (its leading
// comment lines) and checks that the body uses no KEYS[n] it does not
// document.
func parseKeyDoc(src string) (keyDoc, error) {
	var doc keyDoc
	lines := strings.Split(src, "\n")
	body := 0
	seen := map[string]bool{}
	for body < len(lines) && strings.HasPrefix(lines[body], "--") {
		text := strings.TrimSpace(strings.TrimPrefix(lines[body], "--"))
		body++
		if !strings.HasPrefix(text, "KEYS[") {
			continue
		}
		ms := keysEntry.FindAllStringSubmatchIndex(text, -1)
		for j, m := range ms {
			end := len(text)
			if j+1 < len(ms) {
				end = ms[j+1][0]
			}
			idx := text[m[2]:m[3]]
			nm := keyName.FindStringSubmatch(strings.TrimSpace(text[m[1]:end]))
			if nm == nil {
				return doc, fmt.Errorf("line %d: KEYS[%s] names no key", body, idx)
			}
			if seen[idx] {
				return doc, fmt.Errorf("line %d: KEYS[%s] documented twice", body, idx)
			}
			seen[idx] = true
			spec := keySpec{index: idx, name: nm[1], optional: strings.HasPrefix(nm[2], "(only with")}
			if strings.HasSuffix(idx, "+i") {
				if doc.tail != nil {
					return doc, fmt.Errorf("line %d: a second variable tail KEYS[%s]", body, idx)
				}
				doc.tail = &spec
				continue
			}
			if doc.tail != nil {
				return doc, fmt.Errorf("line %d: KEYS[%s] after the variable tail KEYS[%s]", body, idx, doc.tail.index)
			}
			if want := strconv.Itoa(len(doc.fixed) + 1); idx != want {
				return doc, fmt.Errorf("line %d: KEYS[%s] where KEYS[%s] is expected (entries in order, none missing)", body, idx, want)
			}
			if n := len(doc.fixed); n > 0 && doc.fixed[n-1].optional && !spec.optional {
				return doc, fmt.Errorf("line %d: required KEYS[%s] after an optional key", body, idx)
			}
			doc.fixed = append(doc.fixed, spec)
		}
	}
	if len(doc.fixed) == 0 {
		return doc, fmt.Errorf(`no "-- KEYS[n] <name>" lines in the header`)
	}
	if p := doc.fixed[0]; p.name != "prefix" || p.optional {
		return doc, fmt.Errorf(`KEYS[1] is %q, want the prefix ("KEYS[1] prefix \"{ns}:\"")`, p.name)
	}
	if t := doc.tail; t != nil {
		if want := strconv.Itoa(len(doc.fixed)) + "+i"; t.index != want {
			return doc, fmt.Errorf("variable tail KEYS[%s] does not follow the last fixed key: want KEYS[%s]", t.index, want)
		}
		if doc.fixed[len(doc.fixed)-1].optional {
			return doc, fmt.Errorf("variable tail KEYS[%s] after an optional key", t.index)
		}
	}
	for i, line := range lines[body:] {
		code, _, _ := strings.Cut(line, "--")
		for _, m := range keysUse.FindAllStringSubmatch(code, -1) {
			if n, _ := strconv.Atoi(m[1]); n > len(doc.fixed) {
				return doc, fmt.Errorf("line %d uses KEYS[%d]; the header documents %d keys", body+i+1, n, len(doc.fixed))
			}
		}
	}
	return doc, nil
}

var placeholder = regexp.MustCompile(`<[^>]*>`)

// matchKey matches key against the documented name, after prefix. Placeholders
// already in bound must take their bound value; new ones are added to bound.
func matchKey(name, prefix, key string, bound map[string]string) error {
	if name == "prefix" {
		if key != prefix {
			return fmt.Errorf("%q is not the prefix %q", key, prefix)
		}
		return nil
	}
	var re strings.Builder
	re.WriteString("^" + regexp.QuoteMeta(prefix))
	var fresh []string
	last := 0
	for _, m := range placeholder.FindAllStringIndex(name, -1) {
		re.WriteString(regexp.QuoteMeta(name[last:m[0]]))
		ph := name[m[0]:m[1]]
		if v, ok := bound[ph]; ok {
			re.WriteString(regexp.QuoteMeta(v))
		} else {
			re.WriteString("(.+)")
			fresh = append(fresh, ph)
		}
		last = m[1]
	}
	re.WriteString(regexp.QuoteMeta(name[last:]) + "$")
	sub := regexp.MustCompile(re.String()).FindStringSubmatch(key)
	if sub == nil {
		return fmt.Errorf("%q is not %s%s", key, prefix, name)
	}
	for i, ph := range fresh {
		bound[ph] = sub[i+1]
	}
	return nil
}

// checkCall checks the keys of one script call against doc: every key has
// the documented name, in the documented order, the same placeholder has
// one value throughout, every placeholder's value is one of the call's
// arguments, and no key is passed twice.
func checkCall(doc keyDoc, prefix string, keys, args []string) error {
	required := 0
	for _, k := range doc.fixed {
		if !k.optional {
			required++
		}
	}
	if len(keys) < required {
		return fmt.Errorf("%d keys passed, the script documents %d required", len(keys), required)
	}
	if doc.tail == nil && len(keys) > len(doc.fixed) {
		return fmt.Errorf("%d keys passed, the script documents %d", len(keys), len(doc.fixed))
	}
	bound := map[string]string{}
	for i, key := range keys {
		spec, scope := doc.tail, map[string]string{}
		if i < len(doc.fixed) {
			spec, scope = &doc.fixed[i], bound
		} else {
			for ph, v := range bound {
				scope[ph] = v
			}
		}
		if err := matchKey(spec.name, prefix, key, scope); err != nil {
			return fmt.Errorf("KEYS[%d] (documented KEYS[%s] %s): %w", i+1, spec.index, spec.name, err)
		}
		for _, ph := range placeholder.FindAllString(spec.name, -1) {
			if !slices.Contains(args, scope[ph]) {
				return fmt.Errorf("KEYS[%d] %q: %s = %q is none of the arguments %q", i+1, key, ph, scope[ph], args)
			}
		}
		if j := slices.Index(keys[:i], key); j >= 0 {
			return fmt.Errorf("KEYS[%d] = KEYS[%d] = %q", i+1, j+1, key)
		}
	}
	return nil
}

// luaScripts returns every script of lua/ (every file but common.lua and
// the helpers of luaHelpers) with its source.
func luaScripts(t *testing.T) map[string]string {
	t.Helper()
	helper := map[string]bool{"common.lua": true}
	for _, hs := range luaHelpers {
		for _, h := range hs {
			helper[h] = true
		}
	}
	names, err := fs.Glob(luaFiles, "lua/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "lua/")
		if helper[base] {
			continue
		}
		src, err := luaFiles.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out[base] = string(src)
	}
	return out
}

func TestLuaKeyHeaders(t *testing.T) {
	for name, src := range luaScripts(t) {
		if _, err := parseKeyDoc(src); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestKeyDocCatchesMistakes shows that the check fails on a missing
// header, keys passed in another order, and a key renamed in keys.go.
func TestKeyDocCatchesMistakes(t *testing.T) {
	if _, err := parseKeyDoc("-- new.lua: no key list\nreturn KEYS[1]\n"); err == nil {
		t.Error("a script without a KEYS header was accepted")
	}
	if _, err := parseKeyDoc("-- KEYS[1] prefix \"{ns}:\"   KEYS[2] inst:<id>\nreturn KEYS[3]\n"); err == nil {
		t.Error("a script using an undocumented KEYS[3] was accepted")
	}
	if _, err := parseKeyDoc("-- KEYS[1] prefix \"{ns}:\"   KEYS[3] inst:<id>\n"); err == nil {
		t.Error("a header skipping KEYS[2] was accepted")
	}
	doc, err := parseKeyDoc("-- KEYS[1] prefix \"{ns}:\"   KEYS[2] inst:<id>   KEYS[3] inbox:<id>\n-- KEYS[4] req:<request id> (only with a request id)\n")
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeys("")
	args := []string{"i1", "r1"}
	if err := checkCall(doc, k.Prefix(), []string{k.Prefix(), k.InstanceKey("i1"), k.InboxKey("i1")}, args); err != nil {
		t.Errorf("right keys refused: %v", err)
	}
	if err := checkCall(doc, k.Prefix(), []string{k.Prefix(), k.InstanceKey("i1"), k.InboxKey("i1"), k.requestKey("r1")}, args); err != nil {
		t.Errorf("right keys with the optional one refused: %v", err)
	}
	for what, keys := range map[string][]string{
		"swapped":         {k.Prefix(), k.InboxKey("i1"), k.InstanceKey("i1")},
		"renamed":         {k.Prefix(), k.base + "instance:i1", k.InboxKey("i1")},
		"two instances":   {k.Prefix(), k.InstanceKey("i1"), k.InboxKey("i2")},
		"not an argument": {k.Prefix(), k.InstanceKey("i9"), k.InboxKey("i9")},
		"missing":         {k.Prefix(), k.InstanceKey("i1")},
		"one too many":    {k.Prefix(), k.InstanceKey("i1"), k.InboxKey("i1"), k.requestKey("r1"), k.timersKey()},
		"no prefix first": {k.InstanceKey("i1"), k.Prefix(), k.InboxKey("i1")},
		"other namespace": {k.Prefix(), NewKeys("x").InstanceKey("i1"), k.InboxKey("i1")},
	} {
		if err := checkCall(doc, k.Prefix(), keys, args); err == nil {
			t.Errorf("%s: keys %q accepted", what, keys)
		}
	}
}

// evalCall is one script call seen on the wire.
type evalCall struct {
	sha        string
	keys, args []string
	site       string // file:line of the Run call in package queue
}

// evalRecorder is a go-redis hook that records every EVALSHA and EVAL with
// the place in package queue that ran the script.
type evalRecorder struct {
	mu    sync.Mutex
	calls []evalCall
}

func (r *evalRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *evalRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (r *evalRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if name := strings.ToLower(cmd.Name()); (name == "evalsha" || name == "eval") && len(a) >= 3 {
			c := evalCall{sha: fmt.Sprint(a[1]), site: scriptCallSite()}
			if name == "eval" {
				h := sha1.Sum([]byte(c.sha))
				c.sha = hex.EncodeToString(h[:])
			}
			n, _ := strconv.Atoi(fmt.Sprint(a[2]))
			for i, v := range a[3:] {
				if i < n {
					c.keys = append(c.keys, fmt.Sprint(v))
				} else {
					c.args = append(c.args, fmt.Sprint(v))
				}
			}
			r.mu.Lock()
			r.calls = append(r.calls, c)
			r.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

// scriptCallSite returns "file.go:line" of the caller of redis.Script.Run.
func scriptCallSite() string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	found := false
	for {
		f, more := frames.Next()
		if found {
			return filepath.Base(f.File) + ":" + strconv.Itoa(f.Line)
		}
		found = f.Function == "github.com/redis/go-redis/v9.(*Script).Run"
		if !more {
			return "?"
		}
	}
}

// callSite is a call of a script's Run in the package's code.
type callSite struct {
	file       string
	start, end int
}

func (c callSite) String() string { return fmt.Sprintf("%s:%d", c.file, c.start) }

// scriptCallSites finds every x.Run(ctx, s.rdb, keys, ...) in the
// package's non-test files: the places that run a script.
func scriptCallSites(t *testing.T) []callSite {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var sites []callSite
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 3 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Run" {
				return true
			}
			if arg, ok := call.Args[1].(*ast.SelectorExpr); ok && arg.Sel.Name == "rdb" {
				sites = append(sites, callSite{f, fset.Position(call.Pos()).Line, fset.Position(call.End()).Line})
			}
			return true
		})
	}
	return sites
}

// runEveryScript calls every Store method that runs a script, each way
// that reaches another call site or another optional key. Script errors
// (a missing instance, a stale token) do not matter: the keys reached the
// server.
func runEveryScript(e *env) {
	ctx, s := e.ctx, e.s
	_ = s.CreateInstance(ctx, CreateRequest{InstanceID: "i1", Name: "n", Bucket: "o:b", Message: "start"})
	_ = s.CreateInstance(ctx, CreateRequest{InstanceID: "i2", Name: "n", Bucket: "o:c", Message: "start", RequestID: "create-1"})
	_ = s.Enqueue(ctx, "i1", "m1")
	_ = s.EnqueueRequest(ctx, "i1", "m2", "enqueue-1", time.Minute)
	res, _ := s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{RequestID: "fetch-1", Buckets: []string{"o:b", "o:c"}, Max: 1, LockTimeout: longLock})
	_, _ = s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{RequestID: "fetch-2", Max: 1, LockTimeout: longLock})
	tok := "none"
	if len(res.Items) == 1 {
		tok = res.Items[0].Token
	}
	id := "i1"
	if len(res.Items) == 1 {
		id = res.Items[0].InstanceID
	}
	_ = s.RenewOrchestrationLock(ctx, id, tok, longLock)
	_ = s.AckOrchestration(ctx, OrchestrationAck{InstanceID: id, Token: tok, ExecutionID: 1, Status: StatusRunning,
		NewEvents: []string{"e1"}, Activities: []WorkItem{{Bucket: "a:x", Body: "w"}}})
	_ = s.AbandonOrchestration(ctx, id, tok, 0, true)
	w, _ := s.FetchWork(ctx, FetchWorkRequest{RequestID: "work-1", Buckets: []string{"a:x", "a:y"}, Max: 1, LockTimeout: longLock})
	wid, wtok := "1", "none"
	if len(w.Items) == 1 {
		wid, wtok = w.Items[0].ID, w.Items[0].Token
	}
	_ = s.RenewWork(ctx, wid, wtok, longLock)
	_ = s.AbandonWork(ctx, wid, "stale", 0, true)
	_ = s.AckWork(ctx, wid, wtok, "done")
	_ = s.AckWorkPoisoned(ctx, "2", "none", "", DeadLetterNote{Reason: "r"})
	_, _ = s.AckOrchestrationClaim(ctx, OrchestrationAck{InstanceID: id, Token: "none", ExecutionID: 1, Status: StatusRunning},
		WorkClaim{RequestID: "claim-1", Buckets: []string{"a:x"}, Max: 1, LockTimeout: longLock})
	_, _ = s.AckWorkClaim(ctx, "2", "none", "done", TurnClaim{RequestID: "claim-2", CacheOwner: "c", ReadyBucket: "o:b", LockTimeout: longLock})
	_ = s.RequeueDeadLetter(ctx, "0-1", -1, nil)
	_, _, _ = s.KV(ctx, "i1", "k")
	_, _ = s.KVAll(ctx, "i1")
	_, _ = s.ListInstances(ctx, ListOptions{})
	_, _ = s.ListInstances(ctx, ListOptions{Status: StatusRunning})
	_, _ = s.PruneExecutions(ctx, "i1", PruneOptions{})
	_, _ = s.QueueDepths(ctx)
	_ = s.AdvertiseNode(ctx, "n1", []string{"o:b"}, time.Minute)
	_, _ = s.ReclaimDeadNodes(ctx, "n1", 10)
	_, _ = s.UnservedBuckets(ctx, 10)
	_ = s.WithdrawNode(ctx, "n1")
	_, _, _ = s.RenewSessions(ctx, "owner", time.Minute, time.Minute)
	_, _ = s.ReleaseSessions(ctx, "owner")
	_, _ = s.ReclaimSessions(ctx)
	_, _ = s.DeleteInstance(ctx, "i2", true)
	_, _ = s.DeleteInstances(ctx, BulkDeleteFilter{})
	_, _ = s.DeleteInstances(ctx, BulkDeleteFilter{InstanceIDs: []string{"i1", "i2"}})
}

// TestLuaKeysMatchCallers runs every script from every call site and
// checks the keys each call passes against the script's KEYS header. It
// fails for a script without a header, a script or call site the run does
// not reach, keys in another order than documented, and a key renamed in
// keys.go or in a header.
func TestLuaKeysMatchCallers(t *testing.T) {
	docs := map[string]keyDoc{} // by script hash
	names := map[string]string{}
	for name, src := range luaScripts(t) {
		doc, err := parseKeyDoc(src)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		h := loadScript(name).Hash()
		docs[h], names[h] = doc, name
	}
	sites := scriptCallSites(t)
	if len(sites) == 0 {
		t.Fatal("no script call sites found in the package's code")
	}
	forEach(t, func(t *testing.T, e *env) {
		rec := &evalRecorder{}
		e.rdb.AddHook(rec)
		runEveryScript(e)
		ran := map[string]bool{}
		widest := map[string]int{} // most keys one call of a script passed
		reached := map[callSite]bool{}
		for _, c := range rec.calls {
			name, ok := names[c.sha]
			if !ok {
				t.Errorf("%s ran a script that is not a file of lua/ (hash %s)", c.site, c.sha)
				continue
			}
			ran[name] = true
			widest[name] = max(widest[name], len(c.keys))
			if err := checkCall(docs[c.sha], e.k.Prefix(), c.keys, c.args); err != nil {
				t.Errorf("%s runs %s with keys %q: %v", c.site, name, c.keys, err)
			}
			file, line, _ := strings.Cut(c.site, ":")
			n, _ := strconv.Atoi(line)
			matched := false
			for _, s := range sites {
				if s.file == file && n >= s.start && n <= s.end {
					reached[s], matched = true, true
				}
			}
			if !matched {
				t.Errorf("%s runs %s but is not a call site found in the code", c.site, name)
			}
		}
		var missing []string
		for _, name := range names {
			if !ran[name] {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		for _, name := range missing {
			t.Errorf("%s never ran: add a call to runEveryScript", name)
		}
		for h, name := range names {
			want := len(docs[h].fixed)
			if docs[h].tail != nil {
				want++
			}
			if ran[name] && widest[name] < want {
				t.Errorf("%s: no call passed all %d documented keys (optional ones, one of the variable tail); add one to runEveryScript", name, want)
			}
		}
		for _, s := range sites {
			if !reached[s] {
				t.Errorf("the script call at %s never ran: add a call to runEveryScript", s)
			}
		}
	})
}

// TestLuaKeyHelpersMatchKeys checks every key and channel name common.lua
// derives from KEYS[1] (local function k_x(...) return P .. ..., local
// K_X/CH_X = P .. ...) against the builder of keys.go, by evaluating the
// helpers on the server; no other file of lua/ builds a name from P.
func TestLuaKeyHelpersMatchKeys(t *testing.T) {
	const id, owner = "i{1}:x", "w-1"
	k := NewKeys("")
	want := map[string]struct{ call, key string }{
		"k_inst":         {"k_inst(ID)", k.InstanceKey(id)},
		"k_inbox":        {"k_inbox(ID)", k.InboxKey(id)},
		"k_hist":         {"k_hist(ID, 7)", k.HistoryKey(id, 7)},
		"k_ready":        {"k_ready(ID)", k.ReadyKey(id)},
		"k_wq":           {"k_wq(ID)", k.WorkStreamKey(id)},
		"k_wqd":          {"k_wqd(ID)", k.WorkDelayKey(id)},
		"K_WQ_DUE":       {"K_WQ_DUE", k.workDueKey()},
		"k_wi":           {"k_wi(ID)", k.WorkItemKey(id)},
		"k_children":     {"k_children(ID)", k.childrenKey(id)},
		"k_wimap":        {"k_wimap(ID)", k.WorkMapKey(id)},
		"k_kv":           {"k_kv(ID)", k.kvKey(id)},
		"k_kvd":          {"k_kvd(ID)", k.kvDeltaKey(id)},
		"k_execs":        {"k_execs(ID)", k.executionsKey(id)},
		"k_sess":         {"k_sess(ID)", k.sessionKey(id)},
		"k_osess":        {"k_osess(OWNER)", k.ownerSessionsKey(owner)},
		"node_bucket":    {"node_bucket(OWNER)", NodeWorkBucket(owner)},
		"k_node":         {"k_node(OWNER)", k.nodeKey(owner)},
		"k_nodeinfo":     {"k_nodeinfo(OWNER)", k.nodeInfoKey(owner)},
		"k_nlocks":       {"k_nlocks(OWNER)", k.nodeLocksKey(owner)},
		"k_bystatus":     {"k_bystatus('Failed')", k.statusIndexKey(StatusFailed)},
		"K_TIMERS":       {"K_TIMERS", k.timersKey()},
		"K_ENGINES":      {"K_ENGINES", k.EnginesKey()},
		"K_SEQ":          {"K_SEQ", k.seqKey()},
		"K_ORCH_BUCKETS": {"K_ORCH_BUCKETS", k.OrchestrationBucketsKey()},
		"K_WORK_BUCKETS": {"K_WORK_BUCKETS", k.workBucketsKey()},
		"K_NODES":        {"K_NODES", k.NodesKey()},
		"K_DEAD":         {"K_DEAD", k.DeadLettersKey()},
		"K_INSTANCES":    {"K_INSTANCES", k.instancesKey()},
		"K_STATS":        {"K_STATS", k.StatsKey()},
		"K_NODE_SINCE":   {"K_NODE_SINCE", k.nodeSinceKey()},
		"K_NODE_TTL":     {"K_NODE_TTL", k.nodeTTLKey()},
		"CH_WAKE_ORCH":   {"CH_WAKE_ORCH", k.WakeOrchChannel()},
		"CH_ENDED":       {"CH_ENDED", k.EndedChannel()},
	}
	common, err := luaFiles.ReadFile("lua/common.lua")
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`^local (?:function (\w+)\([^)]*\) return|(\w+) =) (?:P \.\. |'s:' \.\. )`)
	var helpers []string
	for i, line := range strings.Split(string(common), "\n") {
		m := decl.FindStringSubmatch(line)
		if m == nil {
			if strings.Contains(line, "P ..") {
				t.Errorf("common.lua:%d builds a name from P outside a key helper: %s", i+1, line)
			}
			continue
		}
		name := m[1] + m[2]
		if _, ok := want[name]; !ok {
			t.Errorf("common.lua:%d: key helper %s has no keys.go counterpart in this test", i+1, name)
			continue
		}
		helpers = append(helpers, name)
	}
	for name := range want {
		if !slices.Contains(helpers, name) {
			t.Errorf("%s is not a key helper of common.lua", name)
		}
	}
	for name, src := range luaScripts(t) {
		for i, line := range strings.Split(src, "\n") {
			if strings.Contains(line, "P ..") || strings.Contains(line, "KEYS[1] ..") {
				t.Errorf("%s:%d builds a key name itself; use a helper of common.lua: %s", name, i+1, line)
			}
		}
	}
	var calls []string
	for _, name := range helpers {
		calls = append(calls, want[name].call)
	}
	probe := fmt.Sprintf("local ID, OWNER = %q, %q\nreturn {%s}", id, owner, strings.Join(calls, ", "))
	src, _ := luaFiles.ReadFile("lua/common.lua")
	forEach(t, func(t *testing.T, e *env) {
		got, err := e.rdb.Eval(e.ctx, string(src)+"\n"+probe, []string{k.Prefix()}).StringSlice()
		if err != nil {
			t.Fatalf("evaluating the helpers: %v", err)
		}
		for i, name := range helpers {
			if got[i] != want[name].key {
				t.Errorf("%s = %q in Lua, %q in keys.go", want[name].call, got[i], want[name].key)
			}
		}
	})
}

// TestTurnLeadMatchesLua checks that TurnLead is the lead common.lua
// scores running instances' turns with.
func TestTurnLeadMatchesLua(t *testing.T) {
	common, err := luaFiles.ReadFile("lua/common.lua")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("\nlocal TURN_LEAD_MS = %d\n", TurnLead.Milliseconds())
	if !strings.Contains(string(common), want) {
		t.Fatalf("common.lua does not define %q (queue.TurnLead)", strings.TrimSpace(want))
	}
}
