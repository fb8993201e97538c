package queue

import (
	"errors"
	"fmt"
)

// DefaultPrefix is the key namespace used when Options.Prefix is empty.
const DefaultPrefix = "dw"

// Key kinds. Lua scripts build instance-dependent keys from the same kinds
// (see queue/lua/common.lua); the two must stay in step.
const (
	kindInstance    = "inst:"
	kindInbox       = "inbox:"
	kindHistory     = "hist:"
	kindReady       = "ready:"
	kindWorkStream  = "wq:"
	kindWorkDelay   = "wqd:"
	kindWorkDue     = "wqdue"
	kindWorkItem    = "wi:"
	kindTimers      = "timers"
	kindEngines     = "engines"
	kindSeq         = "seq"
	kindFetchReq    = "fr:"
	kindRequest     = "req:"
	kindWakeOrch    = "wake:orch"
	kindEndedEvent  = "ended"
	kindOrchBuckets = "buckets:o"
	kindWorkBuckets = "buckets:a"
	kindNodes       = "nodes"
	kindNode        = "node:"
	kindNodeInfo    = "nodeinfo:"
	kindChildren    = "children:"
	kindWorkMap     = "wimap:"
	kindKV          = "kv:"
	kindKVDelta     = "kvd:"
	kindInstances   = "instances"
	kindExecutions  = "execs:"
	kindStats       = "stats"
	kindByStatus    = "bystatus:"
)

// Keys builds every Redis key and channel name of one namespace. Each name
// is "{" + prefix + "}:" + kind + ..., so the hash tag is the prefix and all
// keys of a namespace map to one Redis Cluster slot, whatever instance ids and
// bucket names they contain. The zero value is not usable; call NewKeys.
type Keys struct {
	base string // "{prefix}:"
}

// maxPrefixLen is the longest key prefix ValidatePrefix accepts, in bytes.
const maxPrefixLen = 64

// errInvalidPrefix is returned (wrapped) by ValidatePrefix.
var errInvalidPrefix = errors.New("invalid key prefix")

// ValidatePrefix reports whether prefix can name a namespace. A prefix is 1
// to 64 (maxPrefixLen) bytes of ASCII letters, digits, '_', '-', '.' and ':'.
// Everything else is refused: '{' and '}' would change the Redis Cluster
// hash tag; '*', '?', '[', ']' and '\' are glob metacharacters, so an ACL
// rule such as ~{o*}:* written for one application would also match the
// keys of another; spaces and control characters break ACL rules, logs and
// command lines. Check a prefix that comes from configuration with it
// before calling New or NewKeys, which panic on an invalid prefix.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("%w: the prefix is empty", errInvalidPrefix)
	}
	if len(prefix) > maxPrefixLen {
		return fmt.Errorf("%w: the prefix is %d bytes long, more than the limit of %d", errInvalidPrefix, len(prefix), maxPrefixLen)
	}
	for i := 0; i < len(prefix); i++ {
		if !prefixChar(prefix[i]) {
			return fmt.Errorf("%w: %q contains %q; a prefix may contain only ASCII letters, digits, '_', '-', '.' and ':' (no glob characters, braces, spaces or control characters, which would break the hash tag or ACL key patterns)",
				errInvalidPrefix, prefix, prefix[i])
		}
	}
	return nil
}

func prefixChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == ':'
}

// NewKeys returns the key builder for prefix ("" means DefaultPrefix). It
// panics if prefix is not valid (see ValidatePrefix).
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := ValidatePrefix(prefix); err != nil {
		panic("queue: " + err.Error())
	}
	return Keys{base: "{" + prefix + "}:"}
}

// Prefix returns the common start of every key, "{prefix}:". Scripts get it
// as KEYS[1] and derive instance-dependent keys from it.
func (k Keys) Prefix() string { return k.base }

// InstanceKey is the hash holding an instance's metadata and lock.
func (k Keys) InstanceKey(instanceID string) string { return k.base + kindInstance + instanceID }

// InboxKey is the list of messages waiting for an instance's next turn.
func (k Keys) InboxKey(instanceID string) string { return k.base + kindInbox + instanceID }

// HistoryKey is the list of history events of one execution of an instance.
func (k Keys) HistoryKey(instanceID string, executionID uint64) string {
	return k.base + kindHistory + instanceID + ":" + formatUint(executionID)
}

// ReadyKey is the sorted set of instances in a ready bucket, scored by the
// time (Unix ms) from which each may be fetched.
func (k Keys) ReadyKey(bucket string) string { return k.base + kindReady + bucket }

// WorkStreamKey is the stream of a work bucket: one entry (field "w" = the
// work id) per item that is ready or locked, read through the consumer
// group WorkGroup; the pending entries list of the group holds the locked
// (delivered, not yet acknowledged) ones.
func (k Keys) WorkStreamKey(bucket string) string { return k.base + kindWorkStream + bucket }

// WorkDelayKey is the sorted set of the work items of a bucket that wait
// (an abandon with a delay, a session item handed back), scored by the time
// (Unix ms) from which each goes back into the bucket's stream.
func (k Keys) WorkDelayKey(bucket string) string { return k.base + kindWorkDelay + bucket }

// workDueKey is the hash bucket -> the earliest due time (ms) in the
// bucket's WorkDelayKey, so that a fetch reads one hash instead of the
// delayed set of every bucket it serves. It may name an earlier time than
// what is left; a fetch then corrects it.
func (k Keys) workDueKey() string { return k.base + kindWorkDue }

// WorkGroup is the consumer group of every work stream.
const WorkGroup = "g"

// WorkItemKey is the hash holding one work item.
func (k Keys) WorkItemKey(workID string) string { return k.base + kindWorkItem + workID }

// timersKey is the sorted set of delayed messages, scored by due time (Unix ms).
func (k Keys) timersKey() string { return k.base + kindTimers }

// EnginesKey is the set of engine versions that executions have pinned.
func (k Keys) EnginesKey() string { return k.base + kindEngines }

// seqKey is the counter that numbers work items and timers.
func (k Keys) seqKey() string { return k.base + kindSeq }

// fetchOrchRequestKey records what one FetchOrchestrations request locked,
// so that running the same request again returns the same items.
func (k Keys) fetchOrchRequestKey(requestID string) string {
	return k.base + kindFetchReq + "o:" + requestID
}

// fetchWorkRequestKey records what one FetchWork request locked.
func (k Keys) fetchWorkRequestKey(requestID string) string {
	return k.base + kindFetchReq + "w:" + requestID
}

// requestKey records that one producer request (a create or an enqueue
// named with a request id) succeeded, so that running the same request
// again answers as the first run did instead of writing twice. It expires
// after RequestTTL.
func (k Keys) requestKey(requestID string) string { return k.base + kindRequest + requestID }

// WakeOrchChannel is the pub/sub channel announcing that a ready bucket got
// work; the message is the bucket name.
func (k Keys) WakeOrchChannel() string { return k.base + kindWakeOrch }

// EndedChannel is the pub/sub channel announcing that an instance reached
// Completed or Failed; the message is the instance id.
func (k Keys) EndedChannel() string { return k.base + kindEndedEvent }

// OrchestrationBucketsKey is the set of every ready bucket name ever used,
// so that work in a bucket no live node serves can be found.
func (k Keys) OrchestrationBucketsKey() string { return k.base + kindOrchBuckets }

// workBucketsKey is the set of every activity bucket name ever used.
func (k Keys) workBucketsKey() string { return k.base + kindWorkBuckets }

// NodesKey is the sorted set of live worker nodes, scored by the time (ms)
// until which each counts as live.
func (k Keys) NodesKey() string { return k.base + kindNodes }

// nodeKey is the set of bucket names a live node serves; it expires with the
// node's liveness.
func (k Keys) nodeKey(nodeID string) string { return k.base + kindNode + nodeID }

// nodeInfoKey is the description a live node advertises with its buckets
// (JSON, see NodeDescription); it expires with the node's liveness.
func (k Keys) nodeInfoKey(nodeID string) string { return k.base + kindNodeInfo + nodeID }

// nodeLocksKey is the set of locks worker node nodeID holds ("o:<instance
// id>", "w:<work id>"), recorded by fetches that name the node, so that
// ReclaimDeadNodes can take them over when the node dies.
func (k Keys) nodeLocksKey(nodeID string) string { return k.base + "nlocks:" + nodeID }

// nodeSinceKey is the hash of live node id -> the time (Unix ms) from which
// the node has been live without a lapse.
func (k Keys) nodeSinceKey() string { return k.base + "nodesince" }

// nodeTTLKey is the hash of listed node id -> the liveness (ms) its
// heartbeats give it, which ReclaimDeadNodes reads for a node that lapsed
// before the caller became live.
func (k Keys) nodeTTLKey() string { return k.base + "nodettl" }

// childrenKey is the set of instances created by acks of instanceID with
// ChildStart.ParentInstanceID = instanceID.
func (k Keys) childrenKey(instanceID string) string { return k.base + kindChildren + instanceID }

// WorkMapKey is the hash mapping "<execution id>:<event id>" to the id of a
// work item an instance scheduled and that is still in flight, so that a
// later ack of that instance can cancel it.
func (k Keys) WorkMapKey(instanceID string) string { return k.base + kindWorkMap + instanceID }

// kvKey is the hash of an instance's committed key-value state as of the
// start of its current execution (field: key, value: JSON {"v":..,"t":..}).
func (k Keys) kvKey(instanceID string) string { return k.base + kindKV + instanceID }

// kvDeltaKey is the hash of the key-value writes of an instance's current
// execution, merged into kvKey when the execution ends.
func (k Keys) kvDeltaKey(instanceID string) string { return k.base + kindKVDelta + instanceID }

// instancesKey is the sorted set of every instance id, scored by creation
// time (Unix ms), for listing instances oldest first.
func (k Keys) instancesKey() string { return k.base + kindInstances }

// statusIndexKey is the sorted set of the ids of the instances whose
// status is status (Pending, Running, Completed or Failed), scored like
// instancesKey: the index a status filter reads instead of scanning.
func (k Keys) statusIndexKey(status string) string { return k.base + kindByStatus + status }

// executionsKey is the hash of an instance's execution records: field
// "<n>" holds the JSON record of execution n, field "<n>:out" the output of
// execution n once it has ended.
func (k Keys) executionsKey(instanceID string) string { return k.base + kindExecutions + instanceID }

// StatsKey is the hash of namespace-wide counters: instances by status
// (pending, running, completed, failed), stored executions and stored
// history events.
func (k Keys) StatsKey() string { return k.base + kindStats }

// sessionKey is the hash of one pinned session: owner, lease deadline
// (ldl, ms) and last activity (last, ms).
func (k Keys) sessionKey(sessionID string) string { return k.base + "sess:" + sessionID }

// ownerSessionsKey is the set of sessions one owner holds.
func (k Keys) ownerSessionsKey(owner string) string { return k.base + "osess:" + owner }

// NodeWorkBucket is the work bucket of one session owner: activities of the
// sessions it holds are routed there.
func NodeWorkBucket(owner string) string { return "s:" + owner }

// DeadLettersKey is the stream of poisoned messages, with their reasons.
func (k Keys) DeadLettersKey() string { return k.base + "dead" }
