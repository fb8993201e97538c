package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/internal/replay"
)

// Bounds of the work one page does.
const (
	// MaxScan is how many instances one page of /instances reads at most
	// when a filter the store has no index for (name, version, id prefix)
	// must be checked instance by instance.
	MaxScan = 5000
	// scanBatch is the page size read from the store while scanning.
	scanBatch = 250
	// defaultLimit and maxLimit bound the rows of /instances.
	defaultLimit, maxLimit = 50, 500
	// maxExecutions is how many executions the instance page lists (the newest).
	maxExecutions = 50
	// maxHistory is how many events the instance page shows.
	maxHistory = 2000
	// maxTree is how many instances of the sub-orchestration tree are shown.
	maxTree = 500
	// versionScan is how many Pending and Running instances the fleet page
	// reads to count instances per version.
	versionScan = 5000
	// dlqPage is the page size of /dlq.
	dlqPage = 50
)

// ---- overview

type overviewData struct {
	Namespaces []overviewNS `json:"namespaces"`
}

type overviewNS struct {
	Prefix   string               `json:"prefix"`
	Metrics  client.SystemMetrics `json:"metrics"`
	Nodes    int                  `json:"live_nodes"`
	DLQ      int                  `json:"dead_letters"`
	DLQMore  bool                 `json:"dead_letters_more"`
	Unserved []string             `json:"unserved_buckets"`
	Error    string               `json:"error,omitempty"`
}

func (h *Handler) overview(r *http.Request, _ *nsState) (any, error) {
	var d overviewData
	for _, p := range h.order {
		c := h.ns[p].Client
		o := overviewNS{Prefix: p, Unserved: []string{}}
		err := func() error {
			var err error
			if o.Metrics, err = c.GetSystemMetrics(r.Context()); err != nil {
				return err
			}
			nodes, err := c.ListNodes(r.Context())
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.Live {
					o.Nodes++
				}
			}
			dls, err := c.ListDeadLetters(r.Context(), "", 100)
			if err != nil {
				return err
			}
			o.DLQ, o.DLQMore = len(dls), len(dls) == 100
			q, err := c.GetQueueDepths(r.Context())
			if err != nil {
				return err
			}
			for _, b := range append(q.Orchestrations, q.Activities...) {
				if b.Unserved {
					o.Unserved = append(o.Unserved, b.Bucket)
				}
			}
			return nil
		}()
		if err != nil {
			o.Error = err.Error()
		}
		d.Namespaces = append(d.Namespaces, o)
	}
	return d, nil
}

// ---- instance list

type instancesFilter struct {
	Status   string `json:"status,omitempty"`
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
	IDPrefix string `json:"id_prefix,omitempty"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Cursor   int    `json:"cursor"`
	Limit    int    `json:"limit"`
}

type instancesData struct {
	Filter    instancesFilter       `json:"filter"`
	Instances []client.InstanceInfo `json:"instances"`
	// Next is the cursor of the next page, -1 at the end.
	Next int `json:"next"`
	// Scanned is how many instances were read to fill the page; Scanning
	// says whether a filter had to be checked one instance at a time, and
	// Bounded whether the scan stopped at MaxScan.
	Scanned  int  `json:"scanned"`
	Scanning bool `json:"scanning"`
	Bounded  bool `json:"bounded"`
	MaxScan  int  `json:"max_scan"`
	// Total counts the instances of the status (all without one).
	Total int64 `json:"total"`
	// NextURL and FirstURL are the links of the pages (HTML only).
	NextURL  string `json:"-"`
	FirstURL string `json:"-"`
	// LastURL starts at the newest page of the creation-time index.
	LastURL  string   `json:"-"`
	Statuses []string `json:"-"`
}

// parseTime reads a time of a filter: RFC 3339, or the form of an HTML
// datetime-local input (taken as UTC).
func parseTime(what, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badRequest("%s %q: want a time such as 2026-01-02T15:04:05Z", what, s)
}

func (h *Handler) instances(r *http.Request, ns *nsState) (any, error) {
	q := r.URL.Query()
	f := instancesFilter{Status: q.Get("status"), Name: q.Get("name"), Version: q.Get("version"),
		IDPrefix: q.Get("id"), From: q.Get("from"), To: q.Get("to"), Limit: defaultLimit}
	switch client.State(f.Status) {
	case "", client.StatePending, client.StateRunning, client.StateCompleted, client.StateFailed:
	default:
		return nil, badRequest("status %q: want Pending, Running, Completed or Failed", f.Status)
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return nil, badRequest("limit %q: want 1 to %d", s, maxLimit)
		}
		f.Limit = n
	}
	cursorGiven := q.Get("cursor") != ""
	if cursorGiven {
		n, err := strconv.Atoi(q.Get("cursor"))
		if err != nil || n < 0 {
			return nil, badRequest("cursor %q: want a cursor from a previous page", q.Get("cursor"))
		}
		f.Cursor = n
	}
	from, err := parseTime("from", f.From)
	if err != nil {
		return nil, err
	}
	to, err := parseTime("to", f.To)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	c := ns.Client
	m, err := c.GetSystemMetrics(ctx)
	if err != nil {
		return nil, err
	}
	d := instancesData{Filter: f, Instances: []client.InstanceInfo{}, Next: -1, MaxScan: MaxScan,
		Statuses: []string{"Pending", "Running", "Completed", "Failed"}}
	switch client.State(f.Status) {
	case client.StatePending:
		d.Total = m.Pending
	case client.StateRunning:
		d.Total = m.Running
	case client.StateCompleted:
		d.Total = m.Completed
	case client.StateFailed:
		d.Total = m.Failed
	default:
		d.Total = m.Instances
	}
	offset := f.Cursor
	if !cursorGiven && !from.IsZero() {
		// The creation-time index is ordered: find where from begins.
		if offset, err = firstCreatedAt(ctx, c, from, int(m.Instances)); err != nil {
			return nil, err
		}
	}
	d.Scanning = f.Name != "" || f.Version != "" || f.IDPrefix != ""
	for {
		// A scan reads up to scanBatch rows at a time, but never more
		// rows than matches still fit on the page: a page stays within
		// its limit, and Next is where the next page starts.
		batch := f.Limit - len(d.Instances)
		if d.Scanning {
			batch = min(scanBatch, batch)
		}
		page, err := c.ListInstances(ctx, client.ListOptions{Status: client.State(f.Status), Offset: offset, Limit: batch})
		if err != nil {
			return nil, err
		}
		d.Scanned += len(page.Instances)
		next := page.NextOffset
		for _, in := range page.Instances {
			if !to.IsZero() && in.CreatedAt.After(to) {
				next = -1 // the index is in creation order: nothing later matches
				break
			}
			if in.CreatedAt.Before(from) {
				continue
			}
			if (f.Name == "" || in.OrchestrationName == f.Name) &&
				(f.Version == "" || in.OrchestrationVersion == f.Version) &&
				strings.HasPrefix(in.InstanceID, f.IDPrefix) {
				d.Instances = append(d.Instances, in)
			}
		}
		d.Next = next
		if next < 0 || len(d.Instances) >= f.Limit || !d.Scanning {
			break
		}
		if d.Scanned >= MaxScan {
			d.Bounded = true
			break
		}
		offset = next
	}
	base := url.Values{}
	for k, v := range map[string]string{"ns": ns.Prefix, "status": f.Status, "name": f.Name, "version": f.Version, "id": f.IDPrefix, "from": f.From, "to": f.To} {
		if v != "" {
			base.Set(k, v)
		}
	}
	if f.Limit != defaultLimit {
		base.Set("limit", strconv.Itoa(f.Limit))
	}
	d.FirstURL = "/instances?" + base.Encode()
	// The newest page is a position among all instances: only an
	// unfiltered listing has one.
	if from.IsZero() && to.IsZero() && f.Status == "" && !d.Scanning {
		base.Set("cursor", strconv.Itoa(max(0, int(m.Instances)-f.Limit)))
		d.LastURL = "/instances?" + base.Encode()
	}
	if d.Next >= 0 {
		base.Set("cursor", strconv.Itoa(d.Next))
		d.NextURL = "/instances?" + base.Encode()
	}
	return d, nil
}

// firstCreatedAt returns the position in the creation-time index of the
// first instance created at or after t, by binary search: O(log N) reads.
func firstCreatedAt(ctx context.Context, c *client.Client, t time.Time, total int) (int, error) {
	lo, hi := 0, total
	for lo < hi {
		mid := int(uint(lo+hi) / 2)
		p, err := c.ListInstances(ctx, client.ListOptions{Offset: mid, Limit: 1})
		if err != nil {
			return 0, err
		}
		if len(p.Instances) == 0 { // deleted meanwhile, or past the end
			hi = mid
			continue
		}
		if p.Instances[0].CreatedAt.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// ---- one instance

type executionRow struct {
	client.ExecutionInfo
	// Version is the orchestration version the execution ran.
	Version string `json:"version"`
	// Engine is the engine version that started it.
	Engine string `json:"engine"`
}

type treeNode struct {
	ID       string      `json:"id"`
	Name     string      `json:"name"`
	Version  string      `json:"version"`
	Status   string      `json:"status"`
	Children []*treeNode `json:"children,omitempty"`
}

type instanceData struct {
	Info       client.InstanceInfo   `json:"info"`
	Input      string                `json:"input"`
	Executions []executionRow        `json:"executions"`
	Execution  int64                 `json:"execution"`
	History    []client.HistoryEvent `json:"history"`
	// HistoryMore is set when the history was cut at maxHistory events.
	HistoryMore bool              `json:"history_truncated"`
	KV          map[string]string `json:"kv"`
	KVKeys      []string          `json:"-"`
	Tree        *treeNode         `json:"tree"`
	TreeSize    int               `json:"tree_size"`
	TreeError   string            `json:"tree_error,omitempty"`
	Start       time.Time         `json:"-"`
}

func (h *Handler) instance(r *http.Request, ns *nsState) (any, error) {
	id := r.PathValue("id")
	ctx := r.Context()
	c := ns.Client
	info, err := c.GetInstanceInfo(ctx, id)
	if err != nil {
		return nil, err
	}
	d := instanceData{Info: info, Execution: info.CurrentExecutionID, Executions: []executionRow{}, History: []client.HistoryEvent{}}
	if s := r.URL.Query().Get("execution"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return nil, badRequest("execution %q: want an execution number", s)
		}
		d.Execution = n
	}
	execs, err := c.ListExecutions(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(execs) > maxExecutions {
		execs = execs[len(execs)-maxExecutions:]
	}
	for _, x := range execs {
		row := executionRow{ExecutionInfo: x}
		if x.ExecutionID == d.Execution {
			hist, err := c.ReadHistory(ctx, id, x.ExecutionID)
			if err != nil && !errors.Is(err, client.ErrExecutionNotFound) {
				return nil, err
			}
			d.History = hist
		}
		// The version and engine an execution started on are in its first
		// event: read that one only.
		first, err := ns.Store.HistoryRange(ctx, id, uint64(x.ExecutionID), 0, 0)
		if err != nil {
			return nil, err
		}
		if len(first) == 1 {
			if ev, err := replay.DecodeEvent(first[0]); err == nil && ev.Kind == replay.EventOrchestrationStarted {
				row.Version, row.Engine = ev.Version, ev.Engine
			}
		}
		d.Executions = append(d.Executions, row)
	}
	slices.Reverse(d.Executions) // newest first
	if d.Execution > 0 && !slices.ContainsFunc(d.Executions, func(e executionRow) bool { return e.ExecutionID == d.Execution }) {
		if d.History, err = c.ReadHistory(ctx, id, d.Execution); err != nil {
			return nil, err
		}
	}
	if len(d.History) > 0 {
		d.Start = d.History[0].Time
		if d.History[0].Kind == client.EventOrchestrationStarted {
			d.Input = d.History[0].Input
		}
	}
	if len(d.History) > maxHistory {
		d.History, d.HistoryMore = d.History[:maxHistory], true
	}
	if d.KV, err = c.GetKVAll(ctx, id); err != nil {
		return nil, err
	}
	if d.KV == nil {
		d.KV = map[string]string{}
	}
	for k := range d.KV {
		d.KVKeys = append(d.KVKeys, k)
	}
	slices.Sort(d.KVKeys)
	d.Tree, d.TreeSize, err = instanceTree(ctx, c, info)
	if err != nil {
		d.TreeError = err.Error()
	}
	return d, nil
}

// instanceTree reads the sub-orchestration tree below info, up to maxTree
// instances.
func instanceTree(ctx context.Context, c *client.Client, info client.InstanceInfo) (*treeNode, int, error) {
	root := &treeNode{ID: info.InstanceID, Name: info.OrchestrationName, Version: info.OrchestrationVersion, Status: string(info.Status)}
	tree, err := c.GetInstanceTree(ctx, info.InstanceID)
	if err != nil {
		return root, 1, err
	}
	ids := tree.AllIDs
	var shown []string
	if len(ids) > 1 {
		shown = ids[1:min(len(ids), maxTree)]
	}
	nodes := map[string]*treeNode{info.InstanceID: root}
	for _, id := range shown {
		in, err := c.GetInstanceInfo(ctx, id)
		if err != nil {
			continue // deleted meanwhile
		}
		n := &treeNode{ID: id, Name: in.OrchestrationName, Version: in.OrchestrationVersion, Status: string(in.Status)}
		nodes[id] = n
		if p := nodes[in.ParentInstanceID]; p != nil {
			p.Children = append(p.Children, n)
		} else {
			root.Children = append(root.Children, n)
		}
	}
	return root, len(ids), nil
}

// ---- fleet

type nodeRow struct {
	client.Node
	// Orchestrations are the orchestrations the node starts, each with
	// the versions it takes explicitly; Policy means it also takes starts
	// whose version its registry's policy picks.
	Orchestrations []servedOrch `json:"orchestrations"`
	Activities     []string     `json:"activities"`
}

type servedOrch struct {
	Name     string   `json:"name"`
	Policy   bool     `json:"policy"`
	Versions []string `json:"versions"`
}

type versionCount struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Pending  int      `json:"pending"`
	Running  int      `json:"running"`
	ServedBy []string `json:"served_by"`
}

type fleetData struct {
	Nodes    []nodeRow      `json:"nodes"`
	Versions []versionCount `json:"versions"`
	// Scanned is how many Pending and Running instances were read to count
	// Versions; Bounded is set when the count stopped at its bound.
	Scanned int  `json:"scanned"`
	Bounded bool `json:"bounded"`
}

func (h *Handler) fleet(r *http.Request, ns *nsState) (any, error) {
	ctx := r.Context()
	c := ns.Client
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	d := fleetData{Nodes: []nodeRow{}, Versions: []versionCount{}}
	for _, n := range nodes {
		row := nodeRow{Node: n, Orchestrations: []servedOrch{}, Activities: []string{}}
		orch := func(name string) *servedOrch {
			for i := range row.Orchestrations {
				if row.Orchestrations[i].Name == name {
					return &row.Orchestrations[i]
				}
			}
			row.Orchestrations = append(row.Orchestrations, servedOrch{Name: name, Versions: []string{}})
			return &row.Orchestrations[len(row.Orchestrations)-1]
		}
		for _, raw := range n.Buckets {
			b, err := capability.ParseBucket(raw)
			if err != nil {
				continue
			}
			switch b.Kind {
			case capability.Start:
				orch(b.Name).Policy = true
			case capability.StartVersion:
				o := orch(b.Name)
				o.Versions = append(o.Versions, b.Version)
			case capability.TaggedActivity:
				row.Activities = append(row.Activities, b.Name+" #"+b.Tag)
			case capability.Activity:
				row.Activities = append(row.Activities, b.Name)
			}
		}
		slices.SortFunc(row.Orchestrations, func(a, b servedOrch) int { return strings.Compare(a.Name, b.Name) })
		for _, o := range row.Orchestrations {
			slices.SortFunc(o.Versions, compareVersions)
		}
		slices.Sort(row.Activities)
		d.Nodes = append(d.Nodes, row)
	}
	counts := map[[2]string]*versionCount{}
	for _, st := range []client.State{client.StatePending, client.StateRunning} {
		offset := 0
		for offset >= 0 && d.Scanned < versionScan {
			p, err := c.ListInstances(ctx, client.ListOptions{Status: st, Offset: offset, Limit: 1000})
			if err != nil {
				return nil, err
			}
			for _, in := range p.Instances {
				k := [2]string{in.OrchestrationName, in.OrchestrationVersion}
				vc := counts[k]
				if vc == nil {
					vc = &versionCount{Name: k[0], Version: k[1]}
					counts[k] = vc
				}
				if st == client.StatePending {
					vc.Pending++
				} else {
					vc.Running++
				}
			}
			d.Scanned += len(p.Instances)
			offset = p.NextOffset
		}
		if offset >= 0 {
			d.Bounded = true
		}
	}
	for _, vc := range counts {
		vc.ServedBy, _ = c.ServedBy(ctx, vc.Name, vc.Version)
		if vc.ServedBy == nil {
			vc.ServedBy = []string{}
		}
		d.Versions = append(d.Versions, *vc)
	}
	slices.SortFunc(d.Versions, func(a, b versionCount) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
	return d, nil
}

// compareVersions orders semantic versions, falling back to text.
func compareVersions(a, b string) int {
	va, erra := semver.StrictNewVersion(a)
	vb, errb := semver.StrictNewVersion(b)
	if erra != nil || errb != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}

// ---- queues

type queuesData struct {
	client.QueueDepths
	Unserved []client.BucketDepth `json:"unserved"`
}

func (h *Handler) queues(r *http.Request, ns *nsState) (any, error) {
	q, err := ns.Client.GetQueueDepths(r.Context())
	if err != nil {
		return nil, err
	}
	if q.Orchestrations == nil {
		q.Orchestrations = []client.BucketDepth{}
	}
	if q.Activities == nil {
		q.Activities = []client.BucketDepth{}
	}
	d := queuesData{QueueDepths: q, Unserved: []client.BucketDepth{}}
	for _, b := range append(slices.Clone(q.Orchestrations), q.Activities...) {
		if b.Unserved {
			d.Unserved = append(d.Unserved, b)
		}
	}
	return d, nil
}

// ---- dead letters

type dlqData struct {
	DeadLetters []client.DeadLetter `json:"dead_letters"`
	// Next is the cursor of the next page, "" at the end.
	Next    string `json:"next"`
	NextURL string `json:"-"`
}

func (h *Handler) dlq(r *http.Request, ns *nsState) (any, error) {
	dls, err := ns.Client.ListDeadLetters(r.Context(), r.URL.Query().Get("after"), dlqPage)
	if err != nil {
		return nil, err
	}
	d := dlqData{DeadLetters: dls}
	if d.DeadLetters == nil {
		d.DeadLetters = []client.DeadLetter{}
	}
	if len(dls) == dlqPage {
		d.Next = dls[len(dls)-1].ID
		d.NextURL = "/dlq?" + url.Values{"ns": {ns.Prefix}, "after": {d.Next}}.Encode()
	}
	return d, nil
}

func (h *Handler) deadLetter(r *http.Request, ns *nsState) (any, error) {
	return ns.Client.GetDeadLetter(r.Context(), r.PathValue("id"))
}

// ---- sessions

type sessionRow struct {
	SessionID    string    `json:"session_id"`
	Owner        string    `json:"owner"`
	LeaseUntil   time.Time `json:"lease_until"`
	LastActivity time.Time `json:"last_activity"`
}

type sessionsData struct {
	Owner string `json:"owner,omitempty"`
	// Nodes are the worker nodes with the number of sessions each held at
	// its last heartbeat.
	Nodes []client.Node `json:"nodes"`
	// Sessions are those Owner holds (with a store only).
	Sessions []sessionRow `json:"sessions"`
	// CanList is false when the dashboard has no store to list them.
	CanList bool `json:"can_list"`
}

func (h *Handler) sessions(r *http.Request, ns *nsState) (any, error) {
	ctx := r.Context()
	nodes, err := ns.Client.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	if nodes == nil {
		nodes = []client.Node{}
	}
	d := sessionsData{Owner: r.URL.Query().Get("owner"), Nodes: nodes, Sessions: []sessionRow{}, CanList: ns.Store != nil}
	if d.Owner == "" || ns.Store == nil {
		return d, nil
	}
	ids, err := ns.Store.OwnedSessions(ctx, d.Owner)
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	for _, id := range ids {
		s, ok, err := ns.Store.Session(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			d.Sessions = append(d.Sessions, sessionRow{SessionID: id, Owner: s.Owner, LeaseUntil: s.LeaseUntil, LastActivity: s.LastActivity})
		}
	}
	return d, nil
}
