package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/cmd/duroworker/internal/textsafe"
)

// parseBefore parses a --completed-before value relative to now: a Go
// duration ("36h", "90m"), a number of days ("7d") or an RFC 3339 time.
func parseBefore(flag, s string, now time.Time) (time.Time, error) {
	bad := func() (time.Time, error) {
		return time.Time{}, usagef("%s %q: want a duration such as 24h or 7d, or an RFC 3339 time such as 2026-01-02T15:04:05Z", flag, s)
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return bad()
		}
		return now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usagef("%s %q: the duration must not be negative", flag, s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return bad()
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// jsonDeleteResult is the JSON form of client.DeleteResult.
type jsonDeleteResult struct {
	Instances     int `json:"instances"`
	Executions    int `json:"executions"`
	Events        int `json:"events"`
	QueueMessages int `json:"queue_messages"`
}

func newDeleteCommand() *cobra.Command {
	var force bool
	var before string
	var limit int
	cmd := &cobra.Command{
		Use:   "delete (ID [--force] | --completed-before DURATION|TIME [--limit N])",
		Short: "Delete an instance, or ended instances in bulk",
		Long: `delete ID deletes root instance ID with all its sub-orchestrations, in one
atomic step: their state, histories, key-value state, queued messages and
in-flight activities. A Pending or Running instance (or one with a running
sub-orchestration) is refused unless --force; a sub-orchestration cannot be
deleted on its own (delete its root). The id can be used again afterwards.

delete --completed-before deletes ended (Completed or Failed) root instances
that ended before a time, given as a duration before now (36h, 90m, 7d) or an
RFC 3339 time, oldest first, at most --limit roots per run (their
sub-orchestrations are not counted): run it again until it deletes nothing.
Running instances are skipped. Each tree is deleted atomically, the whole run
is not.`,
		Example: `  duroworker delete hello-1
  duroworker delete monitor-1 --force
  duroworker delete --completed-before 7d
  duroworker delete --completed-before 2026-01-01T00:00:00Z --limit 500 -o json`,
		Args: argsBetween(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bulk := cmd.Flags().Changed("completed-before")
			switch {
			case bulk && len(args) > 0:
				return usagef("give either an instance ID or --completed-before, not both")
			case !bulk && len(args) == 0:
				return usagef("give an instance ID, or --completed-before for a bulk delete")
			case bulk && force:
				return usagef("--force applies to one instance: a bulk delete deletes ended instances only")
			case !bulk && cmd.Flags().Changed("limit"):
				return usagef("--limit applies to a bulk delete (--completed-before)")
			case limit < 1:
				return usagef("--limit must be positive, got %d", limit)
			}
			var filter client.BulkDeleteFilter
			if bulk {
				t, err := parseBefore("--completed-before", before, time.Now())
				if err != nil {
					return err
				}
				filter = client.BulkDeleteFilter{CompletedBefore: t, Limit: limit}
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				var res client.DeleteResult
				var err error
				if bulk {
					res, err = cn.client.DeleteInstances(ctx, filter)
				} else {
					id := args[0]
					res, err = cn.client.DeleteInstance(ctx, id, force)
					switch {
					case errors.Is(err, client.ErrInstanceRunning):
						err = fmt.Errorf("%w: cancel it and wait for it to end, or pass --force", err)
					case errors.Is(err, client.ErrCannotDeleteSubOrchestration):
						err = fmt.Errorf("%w: delete its root instance instead", err)
					case errors.Is(err, client.ErrTreeTooLarge):
						err = fmt.Errorf("%w: prune its executions first", err)
					default:
						err = notFound(id, err)
					}
				}
				if err != nil {
					if bulk && res.Instances > 0 {
						fmt.Fprintf(cmd.ErrOrStderr(), "before the error: deleted %s\n", describeDelete(res))
					}
					return err
				}
				if format := outputFor(cmd); format.machine() {
					return format.write(out, jsonDeleteResult{res.Instances, res.Executions, res.Events, res.QueueMessages})
				}
				_, err = fmt.Fprintf(out, "deleted %s\n", describeDelete(res))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&force, "force", false, "delete the instance even if it (or a sub-orchestration) is still Pending or Running")
	f.StringVar(&before, "completed-before", "", "bulk: delete ended root instances that ended before this (duration before now, e.g. 7d, or RFC 3339 time)")
	f.IntVar(&limit, "limit", client.DefaultBulkDeleteLimit, "bulk: largest number of root instances to delete")
	return cmd
}

func describeDelete(r client.DeleteResult) string {
	return fmt.Sprintf("%s, %s, %s, %s", plural(r.Instances, "instance"), plural(r.Executions, "execution"),
		plural(r.Events, "event"), plural(r.QueueMessages, "queue message"))
}

func newPruneCommand() *cobra.Command {
	var keepLast int
	var before string
	cmd := &cobra.Command{
		Use:   "prune ID --keep-last N",
		Short: "Delete the histories of old executions of an instance",
		Long: `prune deletes the stored executions that continue-as-new left behind for
instance ID, keeping the newest N (0 and 1 both keep only the current one,
which is always kept) and, with --completed-before, those that ended later.
Running executions are never deleted; the instance's key-value state is
untouched.`,
		Example: `  duroworker prune monitor-1 --keep-last 10
  duroworker prune monitor-1 --keep-last 1 --completed-before 24h`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if keepLast < 0 {
				return usagef("--keep-last must not be negative, got %d", keepLast)
			}
			opts := client.PruneOptions{KeepLast: keepLast}
			if cmd.Flags().Changed("completed-before") {
				t, err := parseBefore("--completed-before", before, time.Now())
				if err != nil {
					return err
				}
				opts.CompletedBefore = t
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				res, err := cn.client.PruneExecutions(ctx, id, opts)
				if err != nil {
					return notFound(id, err)
				}
				if format := outputFor(cmd); format.machine() {
					return format.write(out, struct {
						InstanceID string `json:"instance_id"`
						Executions int    `json:"executions"`
						Events     int    `json:"events"`
					}{id, res.Executions, res.Events})
				}
				_, err = fmt.Fprintf(out, "pruned %s (%s) of %s\n", plural(res.Executions, "execution"), plural(res.Events, "event"), textsafe.Escape(id))
				return err
			})
		},
	}
	cmd.Flags().IntVar(&keepLast, "keep-last", 0, "how many of the newest executions to keep (required)")
	cmd.Flags().StringVar(&before, "completed-before", "", "delete only executions that ended before this (duration before now, e.g. 7d, or RFC 3339 time)")
	_ = cmd.MarkFlagRequired("keep-last")
	return cmd
}

// jsonDeadLetter is the JSON form of client.DeadLetter.
type jsonDeadLetter struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	InstanceID  string    `json:"instance_id"`
	ExecutionID int64     `json:"execution_id"`
	Reason      string    `json:"reason"`
	Attempts    int       `json:"attempts"`
	MaxAttempts int       `json:"max_attempts"`
	Time        time.Time `json:"time,omitzero"`
	Messages    []string  `json:"messages,omitempty"`
	HistoryLen  int       `json:"history_len,omitempty"`
	WorkBody    string    `json:"work_body,omitempty"`
	Bucket      string    `json:"bucket,omitempty"`
	Session     string    `json:"session,omitempty"`
	EventID     int64     `json:"event_id,omitempty"`
}

func newDLQCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, requeue and drop dead letters (poisoned work)",
		Long: `A message that failed more than a worker's --max-attempts times (a missing
orchestration or activity, a turn that keeps crashing) is poisoned: its
instance fails and the message is kept in the dead-letter stream with the
reason. After deploying the fix, requeue it to run the instance again with
fresh attempts, or drop it to keep the instance failed.`,
		Example: `  duroworker dlq list
  duroworker dlq requeue 1767225600000-0
  duroworker dlq drop 1767225600000-0`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q: want list, requeue or drop", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newDLQListCommand(), newDLQRequeueCommand(), newDLQDropCommand())
	return cmd
}

func newDLQListCommand() *cobra.Command {
	var limit int
	var after string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Long: `list prints dead letters, oldest first: their id (also their time of
arrival), kind (orchestration or activity), instance, execution, attempts and
reason. When --limit were printed, it prints the --after of the next page
("next: --after ID"; -o json: "next", null on the last page). -o json
includes the poisoned messages or work item.`,
		Example: `  duroworker dlq list
  duroworker dlq list --limit 10 --after 1767225600000-0
  duroworker dlq list -o json | jq -r '.dead_letters[].instance_id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usagef("--limit must be between 1 and 1000, got %d", limit)
			}
			if after != "" {
				if err := checkDLQID("--after", after); err != nil {
					return err
				}
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				dls, err := cn.client.ListDeadLetters(ctx, after, limit)
				if err != nil {
					return err
				}
				next := ""
				if len(dls) == limit {
					next = dls[len(dls)-1].ID
				}
				if format := outputFor(cmd); format.machine() {
					list := make([]jsonDeadLetter, 0, len(dls))
					for _, d := range dls {
						list = append(list, jsonDeadLetter{d.ID, d.Kind, d.InstanceID, d.ExecutionID, d.Reason, d.Attempts,
							d.MaxAttempts, d.Time, d.Messages, d.HistoryLen, d.WorkBody, d.Bucket, d.Session, d.EventID})
					}
					var nextp *string
					if next != "" {
						nextp = &next
					}
					return writeList(format, out, struct {
						DeadLetters []jsonDeadLetter `json:"dead_letters"`
						Next        *string          `json:"next"`
					}{list, nextp}, list, nextp)
				}
				if len(dls) == 0 {
					_, err := fmt.Fprintln(out, "no dead letters")
					return err
				}
				tw := newTable(out)
				fmt.Fprintln(tw, "ID\tKIND\tINSTANCE\tEXECUTION\tATTEMPTS\tTIME\tREASON")
				for _, d := range dls {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d/%d\t%s\t%s\n", cell(d.ID), cell(d.Kind), cell(d.InstanceID), d.ExecutionID,
						d.Attempts, d.MaxAttempts, fmtTime(d.Time), short(d.Reason, 100))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if next != "" {
					fmt.Fprintf(out, "next: --after %s\n", textsafe.Escape(next))
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "largest number of dead letters to print (1 to 1000)")
	cmd.Flags().StringVar(&after, "after", "", "start after this dead-letter id (default: from the oldest)")
	return cmd
}

// dlqIDRE is the form of a dead-letter id: a Redis stream entry id.
var dlqIDRE = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// checkDLQID refuses a malformed dead-letter id before Redis does (with a
// raw "Invalid stream ID" error).
func checkDLQID(what, id string) error {
	if dlqIDRE.MatchString(id) {
		return nil
	}
	return usagef("%s %q is not a dead-letter id: want MILLISECONDS-SEQUENCE as printed by dlq list, e.g. 1767225600000-0", what, id)
}

func dlqError(id string, err error) error {
	switch {
	case errors.Is(err, client.ErrDeadLetterNotFound):
		return reword(err, "dead letter %q not found (see dlq list)", id)
	case errors.Is(err, client.ErrNotRequeueable):
		return fmt.Errorf("%w; drop it with: duroworker dlq drop %s", err, id)
	}
	return err
}

func newDLQRequeueCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "requeue DLQ_ID",
		Short: "Run a dead letter's instance again with fresh attempts",
		Long: `requeue gives a poisoned message another chance, typically after deploying
the missing orchestration or activity: the poison outcome is taken out of
the instance's history, the instance runs again and its messages or
activities are delivered again, with fresh attempts. A parent that was told
its child failed is not told otherwise. It fails if the instance has moved
on since (deleted, or requeued already).`,
		Example: `  duroworker dlq requeue 1767225600000-0`,
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkDLQID("DLQ_ID", id); err != nil {
				return err
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				if err := cn.client.RequeueDeadLetter(ctx, id); err != nil {
					return dlqError(id, err)
				}
				if format := outputFor(cmd); format.machine() {
					return format.write(out, map[string]string{"requeued": id})
				}
				_, err := fmt.Fprintf(out, "requeued dead letter %s\n", textsafe.Escape(id))
				return err
			})
		},
	}
	return cmd
}

func newDLQDropCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "drop DLQ_ID",
		Short:   "Delete a dead letter; its instance stays failed",
		Long:    `drop deletes dead letter DLQ_ID. Its instance stays Failed with its poison details.`,
		Example: `  duroworker dlq drop 1767225600000-0`,
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkDLQID("DLQ_ID", id); err != nil {
				return err
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				if err := cn.client.DropDeadLetter(ctx, id); err != nil {
					return dlqError(id, err)
				}
				if format := outputFor(cmd); format.machine() {
					return format.write(out, map[string]string{"dropped": id})
				}
				_, err := fmt.Fprintf(out, "dropped dead letter %s\n", textsafe.Escape(id))
				return err
			})
		},
	}
	return cmd
}

// jsonSession is the JSON form of a session.
type jsonSession struct {
	SessionID    string    `json:"session_id"`
	Pinned       bool      `json:"pinned"`
	Owner        string    `json:"owner,omitempty"`
	LeaseUntil   time.Time `json:"lease_until,omitzero"`
	LastActivity time.Time `json:"last_activity,omitzero"`
}

func newSessionsCommand() *cobra.Command {
	var owners []string
	cmd := &cobra.Command{
		Use:   "sessions [SESSION_ID...] [--owner NODE]...",
		Short: "Show pinned sessions: by id, or those a worker node owns",
		Long: `sessions shows which worker node owns a session (activities scheduled on a
session run on the node that claimed it) with its lease deadline and last
activity: for the SESSION_IDs given, and for every session that the nodes
named with --owner hold (a node's --node-id).

The store keeps one set of sessions per owner and no index of all sessions,
so there is no listing of every session: name the sessions or their owners.`,
		Example: `  duroworker sessions --owner gpu-node-1
  duroworker sessions --owner node-a,node-b -o json
  duroworker sessions cart-42`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(owners) == 0 {
				return usagef("name sessions (SESSION_ID...) or their owners (--owner NODE): the store has no index of all sessions")
			}
			for _, o := range owners {
				if strings.TrimSpace(o) == "" {
					return usagef("--owner is empty")
				}
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				ids := append([]string(nil), args...)
				for _, o := range owners {
					owned, err := cn.store.OwnedSessions(ctx, o)
					if err != nil {
						return err
					}
					slices.Sort(owned)
					ids = append(ids, owned...)
				}
				var list []jsonSession
				seen := map[string]bool{}
				for _, id := range ids {
					if seen[id] {
						continue
					}
					seen[id] = true
					s, ok, err := cn.store.Session(ctx, id)
					if err != nil {
						return err
					}
					if !ok {
						// Unpinned meanwhile, or never pinned.
						if !slices.Contains(args, id) {
							continue
						}
						list = append(list, jsonSession{SessionID: id})
						continue
					}
					list = append(list, jsonSession{SessionID: id, Pinned: true, Owner: s.Owner, LeaseUntil: s.LeaseUntil, LastActivity: s.LastActivity})
				}
				if format := outputFor(cmd); format.machine() {
					if list == nil {
						list = []jsonSession{}
					}
					return writeList(format, out, struct {
						Sessions []jsonSession `json:"sessions"`
					}{list}, list, nil)
				}
				if len(list) == 0 {
					_, err := fmt.Fprintf(out, "no sessions owned by %s\n", textsafe.Escape(strings.Join(owners, ", ")))
					return err
				}
				tw := newTable(out)
				fmt.Fprintln(tw, "SESSION\tOWNER\tLEASE UNTIL\tLAST ACTIVITY")
				for _, s := range list {
					owner := s.Owner
					if !s.Pinned {
						owner = "(not pinned)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cell(s.SessionID), cell(owner), fmtTime(s.LeaseUntil), fmtTime(s.LastActivity))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringSliceVar(&owners, "owner", nil, "list the sessions this worker node holds (repeatable, or comma-separated)")
	return cmd
}

// jsonBucket is the JSON form of client.BucketDepth.
type jsonBucket struct {
	Bucket   string `json:"bucket"`
	Ready    int    `json:"ready"`
	Delayed  int    `json:"delayed"`
	Locked   int    `json:"locked"`
	Unserved bool   `json:"unserved"`
}

func toJSONBuckets(bs []client.BucketDepth) []jsonBucket {
	out := make([]jsonBucket, 0, len(bs))
	for _, b := range bs {
		out = append(out, jsonBucket{b.Bucket, b.Ready, b.Delayed, b.Locked, b.Unserved})
	}
	return out
}

func newQueuesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queues",
		Short: "Show the work waiting in every bucket, and whether a live worker serves it",
		Long: `queues prints every bucket that holds work: orchestration ready buckets
(o:NAME new instances, v:NAME@VERSION new instances of an explicit version,
x:NAME@VERSION@ENGINE running executions) and activity buckets (a:NAME,
tagged and session buckets included), with how many entries are ready,
delayed (backoff) and locked by a worker.

UNSERVED "yes" means that no live worker node advertises the bucket: its work
waits for a node that registers the orchestration name and version, or the
activity and tag. Such work is eventually poisoned (see dlq) if a node
fetches it to back it off; deploy a worker that serves it.`,
		Example: `  duroworker queues
  duroworker queues -o json | jq '.orchestrations[] | select(.unserved)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				d, err := cn.client.GetQueueDepths(ctx)
				if err != nil {
					return err
				}
				if format := outputFor(cmd); format.machine() {
					return format.write(out, struct {
						Orchestrations []jsonBucket `json:"orchestrations"`
						Activities     []jsonBucket `json:"activities"`
						Timers         int          `json:"timers"`
						Partial        bool         `json:"partial"`
					}{toJSONBuckets(d.Orchestrations), toJSONBuckets(d.Activities), d.Timers, d.Partial})
				}
				if len(d.Orchestrations)+len(d.Activities) == 0 {
					fmt.Fprintln(out, "no work waiting in any bucket")
				} else {
					tw := newTable(out)
					fmt.Fprintln(tw, "KIND\tBUCKET\tREADY\tDELAYED\tLOCKED\tUNSERVED")
					for _, g := range []struct {
						kind    string
						buckets []client.BucketDepth
					}{{"orchestration", d.Orchestrations}, {"activity", d.Activities}} {
						for _, b := range g.buckets {
							unserved := "no"
							if b.Unserved {
								unserved = "yes"
							}
							fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", g.kind, cell(b.Bucket), b.Ready, b.Delayed, b.Locked, unserved)
						}
					}
					if err := tw.Flush(); err != nil {
						return err
					}
				}
				fmt.Fprintf(out, "timers waiting: %d\n", d.Timers)
				if d.Partial {
					fmt.Fprintln(out, "note: more than 2,000 entries were due later or 2,000 timers waiting; some were counted without being checked")
				}
				return nil
			})
		},
	}
	return cmd
}

func newMetricsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "Show namespace-wide counters: instances by status, executions, events",
		Long: `metrics prints the counters the store keeps for the namespace: instances by
status, and the stored executions and history events (deletes and prunes
subtract theirs). They are read in O(1), whatever the number of instances.`,
		Example: `  duroworker metrics
  duroworker metrics -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				m, err := cn.client.GetSystemMetrics(ctx)
				if err != nil {
					return err
				}
				if format := outputFor(cmd); format.machine() {
					return format.write(out, struct {
						Instances  int64 `json:"instances"`
						Pending    int64 `json:"pending"`
						Running    int64 `json:"running"`
						Completed  int64 `json:"completed"`
						Failed     int64 `json:"failed"`
						Executions int64 `json:"executions"`
						Events     int64 `json:"events"`
					}{m.Instances, m.Pending, m.Running, m.Completed, m.Failed, m.Executions, m.Events})
				}
				tw := newTable(out)
				fmt.Fprintln(tw, "METRIC\tVALUE")
				for _, r := range []struct {
					name string
					v    int64
				}{{"instances", m.Instances}, {"pending", m.Pending}, {"running", m.Running}, {"completed", m.Completed},
					{"failed", m.Failed}, {"executions", m.Executions}, {"events", m.Events}} {
					fmt.Fprintf(tw, "%s\t%d\n", r.name, r.v)
				}
				return tw.Flush()
			})
		},
	}
	return cmd
}
