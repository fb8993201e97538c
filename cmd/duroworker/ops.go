package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/cmd/duroworker/internal/textsafe"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
)

// runWithConn connects to the Redis of connectionFor(cmd), runs fn with
// the command's standard output and closes the connection. Management
// commands never let go-redis resend a command (see connect).
func runWithConn(cmd *cobra.Command, fn func(ctx context.Context, cn *conn, out io.Writer) error) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	cn, err := connectionFor(cmd).connect(ctx, cmd, nil)
	if err != nil {
		return err
	}
	defer cn.Close()
	return fn(ctx, cn, cmd.OutOrStdout())
}

// newInstanceID returns a random RFC 4122 version 4 UUID.
func newInstanceID() string { return uuid.NewString() }

// waitFor waits for an instance to end, at most timeout (0: no limit).
func waitFor(ctx context.Context, cn *conn, id string, timeout time.Duration) (client.Status, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	st, err := cn.client.Wait(ctx, id)
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, client.ErrInstanceNotFound):
		return st, notFound(id, err)
	case errors.Is(err, context.DeadlineExceeded) && timeout > 0:
		state := st.State
		if state == "" {
			state = "unknown"
		}
		return st, reword(errTimedOut, "timed out after %s waiting for %s to end (still %s)", timeout, id, state)
	}
	return st, err
}

// outcomeError is the error of a wait that ended with a failed instance,
// so that the exit status tells success from failure.
func outcomeError(id string, st client.Status) error {
	if st.State == client.StateFailed {
		return reword(errInstanceFailed, "instance %s failed: %s", id, fmtFailure(st.Failure))
	}
	return nil
}

func checkTimeout(d time.Duration) error {
	if d < 0 {
		return usagef("--timeout must not be negative, got %s", d)
	}
	return nil
}

func newStartCommand() *cobra.Command {
	var id, version string
	var wait, requireServed bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "start NAME [INPUT]",
		Short: "Start an orchestration instance",
		Long: `start creates an instance of orchestration NAME with INPUT (empty if absent;
"-" reads it from standard input). The input is passed as is: a typed
orchestration decodes it as JSON (a string input may be given bare).

Without --id, a random UUID is used and printed. The version is chosen by the
registry policy of the worker that runs the first turn, unless --version
names one. With --wait, start then waits for the instance to end and prints
its outcome; it exits 4 if the instance failed, 5 if --timeout passed.

start warns on stderr when no live worker serves NAME (at --version, or at
the version of its registry's policy): the instance then stays Pending until
one does. --require-served refuses to start it instead (exit 1).`,
		Example: `  duroworker start examples::orchestration::hello world --id hello-1 --wait
  duroworker start examples::orchestration::fan-out 10 -o json
  duroworker start examples::orchestration::health-monitor '{"target":"db-1","interval_ms":1000,"cycles":3}' --version 1.0.1
  echo '{"timeout_ms":60000}' | duroworker start examples::orchestration::approval - --id approval-7`,
		Args: argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			if timeout > 0 && !wait {
				return usagef("--timeout needs --wait")
			}
			name := args[0]
			input, err := payloadArg(cmd, args, 1)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("id") {
				id = newInstanceID()
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				if requireServed {
					if err := checkServed(ctx, cmd, cn, name, version, true); err != nil {
						return err
					}
				}
				if err := cn.client.StartVersioned(ctx, id, name, version, input); err != nil {
					if errors.Is(err, client.ErrInstanceExists) {
						return reword(err, "instance %q already exists (delete it first, or choose another --id)", id)
					}
					return err
				}
				if !requireServed {
					_ = checkServed(ctx, cmd, cn, name, version, false)
				}
				if !wait {
					if format := outputFor(cmd); format.machine() {
						return format.write(out, struct {
							InstanceID string `json:"instance_id"`
							Name       string `json:"name"`
							Version    string `json:"version,omitempty"`
						}{id, name, version})
					}
					_, err := fmt.Fprintf(out, "started %s as instance %s\n", textsafe.Escape(name), textsafe.Escape(id))
					return err
				}
				if !outputFor(cmd).machine() {
					fmt.Fprintf(out, "started %s as instance %s; waiting for it to end\n", textsafe.Escape(name), textsafe.Escape(id))
				}
				st, err := waitFor(ctx, cn, id, timeout)
				if err != nil {
					return err
				}
				if err := printStatus(out, outputFor(cmd), id, st); err != nil {
					return err
				}
				return outcomeError(id, st)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "id", "", "instance id (default: a random UUID, printed)")
	f.StringVar(&version, "version", "", "run this orchestration version (default: the worker's registry policy)")
	f.BoolVar(&wait, "wait", false, "wait for the instance to end and print its outcome")
	f.DurationVar(&timeout, "timeout", 0, "with --wait: give up after this long (0: no limit)")
	f.BoolVar(&requireServed, "require-served", false, "refuse to start the instance when no live worker serves the orchestration name and version")
	return cmd
}

// checkServed warns on stderr when no live worker serves new executions of
// orchestration name at version (called once the instance was created), or,
// with require, returns the error that refuses the start (called before).
// A check that cannot be made is an error only with require.
func checkServed(ctx context.Context, cmd *cobra.Command, cn *conn, name, version string, require bool) error {
	what := name
	if version != "" {
		what += " version " + version
	}
	if _, verr := semver.StrictNewVersion(version); version != "" && verr != nil {
		return nil // the start refuses the version (invalid input) and creates nothing
	}
	nodes, err := cn.client.ServedBy(ctx, name, version)
	switch {
	case err != nil && require:
		return fmt.Errorf("cannot tell which workers serve %s (--require-served): %w", what, err)
	case err != nil:
	case len(nodes) > 0:
	case require:
		return fmt.Errorf("no live worker serves %s: not started (--require-served)", what)
	default:
		fmt.Fprintf(cmd.ErrOrStderr(), "duroworker: warning: no live worker serves %s: the instance stays Pending until one does\n", textsafe.Escape(what))
	}
	return nil
}

func newStatusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Print an instance's status, output or failure, and custom status",
		Long: `status prints the status of instance ID (Pending, Running, Completed or
Failed), the version and number of its current execution, its output or
failure once it has ended, and its custom status. An unknown ID is an error.`,
		Example: `  duroworker status hello-1
  duroworker status hello-1 -o json | jq -r .status`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				st, err := cn.client.Status(ctx, id)
				if err != nil {
					return err
				}
				if st.State == client.StateNotFound {
					return notFound(id, client.ErrInstanceNotFound)
				}
				return printStatus(out, outputFor(cmd), id, st)
			})
		},
	}
	return cmd
}

func newInfoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "info ID",
		Short: "Print everything the store knows of an instance, with its executions",
		Long: `info prints every field of instance ID: orchestration name and version,
status, current execution, output or failure, creation and update times,
parent instance, engine pin and custom status, followed by a table of its
stored executions (continue-as-new starts a new one; prune deletes old ones).`,
		Example: `  duroworker info monitor-1
  duroworker info monitor-1 -o json`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				info, err := cn.client.GetInstanceInfo(ctx, id)
				if err != nil {
					return notFound(id, err)
				}
				execs, err := cn.client.ListExecutions(ctx, id)
				if err != nil {
					return notFound(id, err)
				}
				if format := outputFor(cmd); format.machine() {
					j := toJSONInstance(info)
					j.Executions = make([]jsonExecution, 0, len(execs))
					for _, e := range execs {
						j.Executions = append(j.Executions, toJSONExecution(e))
					}
					return format.write(out, j)
				}
				output := cell(info.Output)
				if info.Status != client.StateCompleted {
					output = "-"
				}
				if err := fields(out, [][2]string{
					{"Instance", cell(info.InstanceID)},
					{"Name", cell(info.OrchestrationName)},
					{"Version", cell(info.OrchestrationVersion)},
					{"Status", cell(string(info.Status))},
					{"Execution", fmt.Sprint(info.CurrentExecutionID)},
					{"Output", output},
					{"Failure", fmtFailure(info.Failure)},
					{"Created", fmtTime(info.CreatedAt)},
					{"Updated", fmtTime(info.UpdatedAt)},
					{"Parent", cell(info.ParentInstanceID)},
					{"Engine pin", cell(info.EnginePin)},
					{"Custom status", fmtCustomStatus(info.CustomStatus, info.CustomStatusSet, info.CustomStatusVersion)},
				}); err != nil {
					return err
				}
				fmt.Fprintln(out)
				if len(execs) == 0 {
					_, err := fmt.Fprintln(out, "no stored executions")
					return err
				}
				tw := newTable(out)
				fmt.Fprintln(tw, "EXECUTION\tSTATUS\tSTARTED\tENDED\tEVENTS\tOUTPUT")
				for _, e := range execs {
					res := short(e.Output, 60)
					if e.Failure != nil {
						res = short(fmtFailure(e.Failure), 60)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", e.ExecutionID, cell(string(e.Status)), fmtTime(e.StartedAt), fmtTime(e.EndedAt), e.EventCount, res)
				}
				return tw.Flush()
			})
		},
	}
	return cmd
}

// parseState parses --status, case-insensitively.
func parseState(s string) (client.State, error) {
	for _, st := range []client.State{client.StatePending, client.StateRunning, client.StateCompleted, client.StateFailed} {
		if strings.EqualFold(s, string(st)) {
			return st, nil
		}
	}
	return "", usagef("--status %q: want pending, running, completed or failed", s)
}

func newListCommand() *cobra.Command {
	var status string
	var limit, offset int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List instances, oldest first",
		Long: `list prints one page of instances, oldest first (by creation), optionally
only those with --status. When there are more, it prints the --offset of
the next page ("next: --offset N"; -o json: "next", null on the last
page). With --status, the page is read from an index of that
status, so a page is short only when it is the last one. Offsets are
positions in a live index: deletes between pages may make a page skip
instances.`,
		Example: `  duroworker list
  duroworker list --status failed --limit 20
  duroworker list --status running --offset 100 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := client.ListOptions{Offset: offset, Limit: limit}
			if status != "" {
				st, err := parseState(status)
				if err != nil {
					return err
				}
				opts.Status = st
			}
			if limit < 1 || limit > 1000 {
				return usagef("--limit must be between 1 and 1000, got %d", limit)
			}
			if offset < 0 {
				return usagef("--offset must not be negative, got %d", offset)
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				page, err := cn.client.ListInstances(ctx, opts)
				if err != nil {
					return err
				}
				if format := outputFor(cmd); format.machine() {
					list := make([]jsonInstance, 0, len(page.Instances))
					for _, in := range page.Instances {
						list = append(list, toJSONInstance(in))
					}
					var next *int
					if page.NextOffset >= 0 {
						next = &page.NextOffset
					}
					return writeList(format, out, struct {
						Instances []jsonInstance `json:"instances"`
						Next      *int           `json:"next"`
					}{list, next}, list, next)
				}
				if len(page.Instances) == 0 {
					fmt.Fprintln(out, "no instances")
				} else {
					tw := newTable(out)
					fmt.Fprintln(tw, "INSTANCE\tNAME\tVERSION\tSTATUS\tEXECUTION\tCREATED\tUPDATED")
					for _, in := range page.Instances {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cell(in.InstanceID), cell(in.OrchestrationName),
							cell(in.OrchestrationVersion), cell(string(in.Status)), in.CurrentExecutionID, fmtTime(in.CreatedAt), fmtTime(in.UpdatedAt))
					}
					if err := tw.Flush(); err != nil {
						return err
					}
				}
				if page.NextOffset >= 0 {
					fmt.Fprintf(out, "next: --offset %d\n", page.NextOffset)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "only instances in this state: pending, running, completed or failed")
	f.IntVar(&limit, "limit", 100, "largest page (1 to 1000)")
	f.IntVar(&offset, "offset", 0, "where the page starts: 0 or the offset printed by the previous page")
	return cmd
}

func newHistoryCommand() *cobra.Command {
	var execution int64
	cmd := &cobra.Command{
		Use:   "history ID",
		Short: "Print the history events of one execution of an instance",
		Long: `history prints the events of one execution of instance ID, one line per
event: its id, kind, name and a short summary of its payload (input, result,
error, timer due time, ...). -o json prints the events in full, as stored
(docs/protocol.md). The default is the current execution; a Pending instance
has none yet. Pruned executions are gone. An event that cannot be decoded is
shown raw and marked (corrupt) ("corrupt": true with -o json); the others are
shown as usual.`,
		Example: `  duroworker history hello-1
  duroworker history monitor-1 --execution 2
  duroworker history monitor-1 -o jsonl | jq -c 'select(.kind == "ActivityCompleted")'`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if execution < 0 {
				return usagef("--execution must not be negative, got %d", execution)
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				exec := execution
				if exec == 0 {
					info, err := cn.client.GetInstanceInfo(ctx, id)
					if err != nil {
						return notFound(id, err)
					}
					exec = info.CurrentExecutionID
				}
				var entries []historyEntry
				if exec > 0 {
					var err error
					entries, err = readHistory(ctx, cn, id, exec)
					switch {
					case errors.Is(err, client.ErrExecutionNotFound):
						return reword(err, "instance %s has no execution %d (never started, or pruned)", id, exec)
					case err != nil:
						return notFound(id, err)
					}
				}
				corrupt := 0
				for _, h := range entries {
					if h.err != nil {
						corrupt++
					}
				}
				if format := outputFor(cmd); format.machine() {
					list := make([]any, 0, len(entries))
					for _, h := range entries {
						if h.err != nil {
							list = append(list, jsonCorruptEvent{Corrupt: true, Error: h.err.Error(), Raw: h.raw})
						} else {
							list = append(list, h.event)
						}
					}
					return writeList(format, out, struct {
						InstanceID    string `json:"instance_id"`
						Execution     int64  `json:"execution"`
						Events        []any  `json:"events"`
						CorruptEvents int    `json:"corrupt_events,omitempty"`
					}{id, exec, list, corrupt}, list, nil)
				}
				if exec == 0 {
					_, err := fmt.Fprintf(out, "instance %s is Pending: no execution has started yet\n", textsafe.Escape(id))
					return err
				}
				tw := newTable(out)
				fmt.Fprintln(tw, "ID\tKIND\tNAME\tPAYLOAD")
				for i, h := range entries {
					if h.err != nil {
						fmt.Fprintf(tw, "#%d\t(corrupt)\t-\t%s\n", i+1, short("raw="+h.raw+" error="+h.err.Error(), 160))
						continue
					}
					e := h.event
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.ID, cell(string(e.Kind)), cell(e.Name), eventPayload(e))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if corrupt > 0 {
					_, err := fmt.Fprintf(out, "note: %s could not be decoded: shown raw as (corrupt), #N is the position in the history\n",
						plural(corrupt, "event"))
					return err
				}
				return nil
			})
		},
	}
	cmd.Flags().Int64Var(&execution, "execution", 0, "execution number (default: the current one)")
	return cmd
}

// historyEntry is one stored history event: decoded, or raw with the
// error that kept it from being decoded.
type historyEntry struct {
	event replay.Event
	raw   string
	err   error
}

// jsonCorruptEvent is the JSON form of an event that cannot be decoded.
type jsonCorruptEvent struct {
	Corrupt bool   `json:"corrupt"`
	Error   string `json:"error"`
	Raw     string `json:"raw"`
}

// readHistory reads the stored events of one execution and decodes each on
// its own, so that one corrupt event does not hide the others; the events
// are shown in their stored form (docs/protocol.md). An empty history is
// checked through the client, which tells an execution without events
// from a missing or pruned one (client.ErrExecutionNotFound).
func readHistory(ctx context.Context, cn *conn, id string, exec int64) ([]historyEntry, error) {
	raw, err := cn.store.History(ctx, id, uint64(exec))
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		if _, err := cn.client.ReadHistory(ctx, id, exec); err != nil {
			return nil, err
		}
		return nil, nil
	}
	entries := make([]historyEntry, 0, len(raw))
	for _, r := range raw {
		e, err := replay.DecodeEvent(r)
		if err != nil {
			entries = append(entries, historyEntry{raw: r, err: err})
			continue
		}
		entries = append(entries, historyEntry{event: e})
	}
	return entries, nil
}

// eventPayload summarizes the payload fields an event uses on one line.
func eventPayload(e replay.Event) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+short(v, 40))
		}
	}
	if e.SourceID != 0 {
		add("source", strconv.FormatInt(e.SourceID, 10))
	}
	add("version", e.Version)
	add("input", e.Input)
	add("result", e.Result)
	if e.Error != nil {
		add("error", fmtFailure((*engine.ErrorDetails)(e.Error)))
	}
	if e.FireAt != 0 {
		add("fire_at", fmtTime(time.UnixMilli(e.FireAt)))
	}
	add("instance", e.Instance)
	add("parent", e.ParentInstance)
	add("tag", e.Tag)
	add("session", e.Session)
	add("reason", e.Reason)
	if e.CustomStatus != nil {
		add("custom_status", *e.CustomStatus)
	}
	if e.Cleared {
		add("cleared", "true")
	}
	if n := len(e.CarryForward); n > 0 {
		add("carry_forward", fmt.Sprintf("%d messages", n))
	}
	return short(strings.Join(parts, " "), 120)
}

// newSendCommand builds raise and enqueue, which send a named message.
func newSendCommand(use, short, long, example, what string,
	send func(ctx context.Context, c *client.Client, id, name, data string) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Example: example,
		Args:    argsBetween(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, name := args[0], args[1]
			data, err := payloadArg(cmd, args, 2)
			if err != nil {
				return err
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				if err := send(ctx, cn.client, id, name, data); err != nil {
					if errors.Is(err, client.ErrInstanceEnded) {
						return reword(err, "instance %s has already ended: it takes no more messages", id)
					}
					return notFound(id, err)
				}
				if format := outputFor(cmd); format.machine() {
					return format.write(out, map[string]string{"instance_id": id, what: name, "data": data})
				}
				_, err := fmt.Fprintf(out, "sent %s %q to %s\n", what, name, textsafe.Escape(id))
				return err
			})
		},
	}
	return cmd
}

func newRaiseCommand() *cobra.Command {
	return newSendCommand("raise ID EVENT [DATA]",
		"Raise a named external event on a running instance",
		`raise delivers external event EVENT with DATA (empty if absent; "-" reads it
from standard input) to running instance ID, where WaitForEvent receives it.
An event raised before the orchestration waits for it is dropped: raise once
the instance is Running. An unknown or ended instance is an error.`,
		`  duroworker raise approval-1 approve alice
  echo '{"by":"alice"}' | duroworker raise approval-1 approve -`,
		"event",
		func(ctx context.Context, c *client.Client, id, name, data string) error {
			return c.RaiseEvent(ctx, id, name, data)
		})
}

func newEnqueueCommand() *cobra.Command {
	return newSendCommand("enqueue ID QUEUE [DATA]",
		"Put a message on an event queue of a running instance",
		`enqueue puts DATA (empty if absent; "-" reads it from standard input) on the
event queue QUEUE of running instance ID, where the orchestration takes
messages in FIFO order with DequeueEvent. Unlike raise, a message that arrives
before the orchestration asks for it is kept, also across continue-as-new.`,
		`  duroworker enqueue chat-1 messages 'hello'
  duroworker enqueue chat-1 messages - < message.json`,
		"queue",
		func(ctx context.Context, c *client.Client, id, name, data string) error {
			return c.EnqueueEvent(ctx, id, name, data)
		})
}

func newCancelCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel ID [REASON]",
		Short: "Ask a running instance to end as failed (cancelled)",
		Long: `cancel asks running instance ID to end: it fails with a cancelled error
("cancelled: REASON"), its running activities lose their locks and their
contexts are cancelled, and its sub-orchestrations are cancelled too. The
cancellation is processed by a worker: use wait to see it take effect.
Cancelling an unknown or ended instance is an error.`,
		Example: `  duroworker cancel monitor-1 "decommissioned"
  duroworker cancel monitor-1 && duroworker wait monitor-1`,
		Args: argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			reason, err := payloadArg(cmd, args, 1)
			if err != nil {
				return err
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				if err := cn.client.Cancel(ctx, id, reason); err != nil {
					if errors.Is(err, client.ErrInstanceEnded) {
						return reword(err, "instance %s has already ended: nothing to cancel", id)
					}
					return notFound(id, err)
				}
				if format := outputFor(cmd); format.machine() {
					return format.write(out, map[string]string{"instance_id": id, "reason": reason})
				}
				_, err := fmt.Fprintf(out, "cancellation of %s requested\n", textsafe.Escape(id))
				return err
			})
		},
	}
	return cmd
}

func newWaitCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait ID",
		Short: "Wait for an instance to end and print its outcome",
		Long: `wait blocks until instance ID completes or fails, then prints its status like
the status command. It exits 0 when the instance completed, 4 when it
failed, 3 when there is no such instance and 5 when --timeout passed first.`,
		Example: `  duroworker wait hello-1
  duroworker wait monitor-1 --timeout 5m -o json`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			return runWithConn(cmd, func(ctx context.Context, cn *conn, out io.Writer) error {
				st, err := waitFor(ctx, cn, id, timeout)
				if err != nil {
					return err
				}
				if err := printStatus(out, outputFor(cmd), id, st); err != nil {
					return err
				}
				return outcomeError(id, st)
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: no limit)")
	return cmd
}
