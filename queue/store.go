// Package queue is duroworker's Redis store: instance metadata and locks,
// inboxes, histories, ready buckets, work items and timers.
//
// It is a "dumb store". Messages, history events and work item bodies are
// opaque strings chosen by the caller, and so are bucket names; queue never
// interprets them and never imports the engine. What it owns is the Redis
// layout (see Keys and docs/redis-layout.md) and the atomicity of every
// look-up-then-write, which runs as one Lua script per operation.
//
// Locks are fenced by tokens: an ack, renew or abandon with a token that is
// no longer the instance's (or work item's) current lock fails with
// ErrLockLost and changes nothing. Lock deadlines and every "now" come from the
// Redis server clock (TIME), never from the caller's.
//
// Fetches are safe to run twice: the caller names each fetch with a request
// id, and a second run of the same request returns what the first one locked
// instead of locking more. go-redis may resend a script whose reply it lost,
// so this matters even without caller-side retries. Creates and enqueues
// may be named with a request id too (CreateRequest.RequestID,
// EnqueueRequest), so that a resend answers as the first run did.
package queue

import (
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Sentinel errors. Returned errors wrap them with context; test with errors.Is.
var (
	// ErrInstanceExists is returned by CreateInstance when the instance id is
	// taken, whatever the status of that instance.
	ErrInstanceExists = errors.New("instance already exists")
	// ErrInstanceNotFound is returned when an instance does not exist.
	ErrInstanceNotFound = errors.New("instance not found")
	// ErrInstanceEnded is returned by Enqueue when the instance is Completed or Failed.
	ErrInstanceEnded = errors.New("instance has ended")
	// ErrLockLost is returned by acks, renewals and abandons whose token is
	// not the current lock (the lock expired and was taken by another fetch,
	// or was already released), and by renewals of an expired lock.
	ErrLockLost = errors.New("lock lost")
	// ErrWorkNotFound is returned when a work item does not exist: it was
	// never created, has already been acked, or was cancelled by
	// OrchestrationAck.CancelActivities.
	ErrWorkNotFound = errors.New("work item not found")
	// ErrAckTooLarge is returned by AckOrchestration when one of the ack's
	// lists has more than MaxAckEntries entries; nothing is written.
	ErrAckTooLarge = errors.New("ack too large")
)

// Defaults for zero-valued request fields.
const (
	// defaultMaxMessages caps the inbox batch of one instance when
	// FetchOrchestrationsRequest.MaxMessages is zero.
	defaultMaxMessages = 1000
	// defaultPromoteTimers caps the timers promoted by one fetch when
	// FetchOrchestrationsRequest.PromoteTimers is zero.
	defaultPromoteTimers = 256
	// MaxAckEntries is the largest number of entries each list of an
	// OrchestrationAck (NewEvents, HeadMessages, Activities, Timers, Outbox,
	// Children, CancelActivities, KV) may have.
	MaxAckEntries = 10000
)

// Instance statuses stored in the status field of an instance.
const (
	// StatusPending: created, no turn acked yet.
	StatusPending = "Pending"
	// StatusRunning: at least one turn acked, not ended.
	StatusRunning = "Running"
	// StatusCompleted: ended successfully; the instance takes no more messages.
	StatusCompleted = "Completed"
	// StatusFailed: ended with a failure; the instance takes no more messages.
	StatusFailed = "Failed"
	// StatusContinuedAsNew is only valid in OrchestrationAck.Status; the
	// instance itself stays Running.
	StatusContinuedAsNew = "ContinuedAsNew"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// Options configures a Store.
type Options struct {
	// Prefix is the key namespace; every key is "{Prefix}:...". If empty,
	// DefaultPrefix ("dw") is used. It must pass ValidatePrefix: ASCII
	// letters, digits, '_', '-', '.' and ':', at most 64 bytes.
	Prefix string
}

// Store is the Redis store of one namespace. It is safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	keys Keys

	create, enqueue        *redis.Script
	fetchOrch, ackOrch     *redis.Script
	abandonOrch, renewOrch *redis.Script
	fetchWork, ackWork     *redis.Script
	abandonWork, renewWork *redis.Script
	advertise, withdraw    *redis.Script
	reclaimNodes           *redis.Script
	unserved, kvRead       *redis.Script
	renewSessions          *redis.Script
	moveSessions           *redis.Script
	requeue                *redis.Script
	list, prune, depths    *redis.Script
	deleteTree, deleteBulk *redis.Script

	lim limits // bounds of the management scripts; tests lower them
	// onWork, when set (by tests), gets the work each management script
	// call reports: index entries read, candidates looked at, records.
	onWork func(script string, work int)
}

// limits are the per-call bounds of the management scripts.
type limits struct {
	maxTree, maxCost, bulkWork, bulkIDs, prune, pruneRead, depths, depthsTimers int
}

var defaultLimits = limits{
	maxTree: MaxTreeSize, maxCost: MaxDeleteCost, bulkWork: bulkWork, bulkIDs: bulkIDsPage,
	prune: pruneBatch, pruneRead: pruneRead, depths: depthsInspect, depthsTimers: depthsTimers,
}

// New returns a Store using rdb. It does not contact Redis: scripts are sent
// on first use (EVALSHA, falling back to EVAL when the server answers
// NOSCRIPT, for example after a restart or failover). A script that the
// server refuses without running it (LOADING while it reloads its dataset,
// BUSY) is retried with backoff within the caller's context.
// It panics if opts.Prefix is not valid; check a configured prefix with
// ValidatePrefix first.
func New(rdb redis.UniversalClient, opts Options) *Store {
	// Scripts run through scriptRunner (it waits out LOADING and BUSY); the
	// other commands go to rdb unchanged.
	s := &Store{rdb: scriptRunner{rdb}, keys: NewKeys(opts.Prefix), lim: defaultLimits}
	s.create = loadScript("create.lua")
	s.enqueue = loadScript("enqueue.lua")
	s.fetchOrch = loadScript("fetch_orch.lua")
	s.ackOrch = loadScript("ack_orch.lua")
	s.abandonOrch = loadScript("abandon_orch.lua")
	s.renewOrch = loadScript("renew_orch.lua")
	s.fetchWork = loadScript("fetch_work.lua")
	s.ackWork = loadScript("ack_work.lua")
	s.abandonWork = loadScript("abandon_work.lua")
	s.renewWork = loadScript("renew_work.lua")
	s.advertise = loadScript("advertise.lua")
	s.withdraw = loadScript("withdraw.lua")
	s.reclaimNodes = loadScript("reclaim_nodes.lua")
	s.unserved = loadScript("unserved.lua")
	s.renewSessions = loadScript("renew_sessions.lua")
	s.moveSessions = loadScript("move_sessions.lua")
	s.requeue = loadScript("requeue.lua")
	s.kvRead = loadScript("kv_read.lua")
	s.list = loadScript("list.lua")
	s.prune = loadScript("prune.lua")
	s.depths = loadScript("depths.lua")
	s.deleteTree = loadScript("delete.lua")
	s.deleteBulk = loadScript("delete_bulk.lua")
	return s
}

// luaHelpers lists, for the scripts that need them, the helper files of
// lua/ that loadScript puts in front of a script, after the prelude. Every
// other file of lua/ but common.lua is a script, with its KEYS documented in
// its header (lua_keys_test.go checks them against what the Go code passes).
var luaHelpers = map[string][]string{
	"list.lua":        {"index.lua"},
	"delete.lua":      {"tree.lua"},
	"delete_bulk.lua": {"tree.lua", "index.lua"},
}

// loadScript returns the embedded script name with its helper files
// (luaHelpers) and, in front, the definitions of common.lua that they use
// (preludeFor). The scripts are built once per process and shared by every
// Store (a *redis.Script is immutable): building them all takes ~15 ms.
func loadScript(name string) *redis.Script {
	if sc, ok := scripts.Load(name); ok {
		return sc.(*redis.Script)
	}
	sc, _ := scripts.LoadOrStore(name, redis.NewScript(scriptSource(name)))
	return sc.(*redis.Script)
}

// scripts caches loadScript: script file name to *redis.Script.
var scripts sync.Map

// scriptSource is the source of loadScript(name).
func scriptSource(name string) string {
	var body strings.Builder
	for _, f := range append(append([]string(nil), luaHelpers[name]...), name) {
		body.WriteString(luaFile(f))
		body.WriteString("\n")
	}
	return preludeFor(commonDefinitions(), body.String()) + "\n" + body.String()
}

// luaFile returns the embedded file lua/name.
func luaFile(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic("queue: embedded lua/" + name + " missing: " + err.Error())
	}
	return string(b)
}

// commonDefinitions are the top-level definitions of common.lua.
var commonDefinitions = sync.OnceValue(func() []preludeDefinition { return parsePrelude(luaFile("common.lua")) })

// Keys returns the key builder of the Store's namespace.
func (s *Store) Keys() Keys { return s.keys }

// scriptErrors maps the codes scripts return with redis.error_reply.
var scriptErrors = []struct {
	code string
	err  error
}{
	{"INSTANCE_EXISTS", ErrInstanceExists},
	{"INSTANCE_NOT_FOUND", ErrInstanceNotFound},
	{"INSTANCE_ENDED", ErrInstanceEnded},
	{"LOCK_LOST", ErrLockLost},
	{"WORK_NOT_FOUND", ErrWorkNotFound},
	{"INSTANCE_RUNNING", ErrInstanceRunning},
	{"SUB_ORCHESTRATION", ErrCannotDeleteSubOrchestration},
	{"TREE_TOO_LARGE", ErrTreeTooLarge},
	{"DEAD_LETTER_NOT_FOUND", ErrDeadLetterNotFound},
	{"NOT_REQUEUEABLE", ErrNotRequeueable},
	{"REQUEST_REUSED", ErrRequestReused},
}

// mapScriptError turns a script's error reply into the matching sentinel;
// other errors are returned unchanged.
func mapScriptError(err error) error {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return err
	}
	msg := rerr.Error()
	for _, se := range scriptErrors {
		if strings.HasPrefix(msg, se.code) {
			return se.err
		}
	}
	return err
}

// newRequestID returns a random request id for fetches that did not name one.
func newRequestID() string { return uuid.NewString() }

// dedupe returns the distinct non-empty strings of in, in first-seen order.
func dedupe(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, v := range in {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// millis converts d to whole milliseconds, rounding up so that a positive
// duration never becomes zero.
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func formatUint(v uint64) string { return strconv.FormatUint(v, 10) }

// Reply decoding helpers for script results (nested []any of string/int64).

func replyInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, fmt.Errorf("unexpected reply element %T, want integer", v)
}

func replyString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("unexpected reply element %T, want string", v)
}

func replyStrings(v any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected reply element %T, want array", v)
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, err := replyString(e)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func replyArray(v any, n int) ([]any, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != n {
		return nil, fmt.Errorf("unexpected reply element %T of length %d, want array of %d", v, len(arr), n)
	}
	return arr, nil
}
