package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/cmd/duroworker/internal/textsafe"
	"github.com/duroworker/duroworker/engine"
)

// outputFormat is the value of -o/--output.
type outputFormat string

// Output formats.
const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
	outputJSONL outputFormat = "jsonl"
)

// String implements pflag.Value.
func (o *outputFormat) String() string { return string(*o) }

// Set implements pflag.Value: it accepts table, json and jsonl.
func (o *outputFormat) Set(s string) error {
	switch f := outputFormat(strings.ToLower(strings.TrimSpace(s))); f {
	case outputTable, outputJSON, outputJSONL:
		*o = f
		return nil
	}
	return fmt.Errorf("want table, json or jsonl")
}

// Type implements pflag.Value.
func (o *outputFormat) Type() string { return "format" }

// machine reports whether the format is for programs (json, jsonl).
func (o outputFormat) machine() bool { return o == outputJSON || o == outputJSONL }

// outputFor returns the output format in effect for cmd: the root's
// -o/--output after the environment was applied, or json when the
// deprecated --json was given. Every command that prints results reads it.
func outputFor(cmd *cobra.Command) outputFormat {
	if f := lookupFlag(cmd, "json"); f != nil && f.Value.Type() == "bool" && f.Value.String() == "true" {
		if o := lookupFlag(cmd, "output"); o == nil || !o.Changed {
			return outputJSON
		}
	}
	if f := lookupFlag(cmd, "output"); f != nil {
		if o, ok := f.Value.(*outputFormat); ok {
			return *o
		}
	}
	return outputTable
}

// write prints one result document: indented under json, on one line
// under jsonl.
func (o outputFormat) write(w io.Writer, v any) error {
	if o == outputJSONL {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	return writeJSON(w, v)
}

// writeList prints a list result: under json the document doc; under jsonl
// one line per item and, when a next page follows (next neither nil nor a
// nil pointer), a last line {"next": NEXT}.
func writeList[T any](o outputFormat, w io.Writer, doc any, items []T, next any) error {
	if o != outputJSONL {
		return writeJSON(w, doc)
	}
	for _, it := range items {
		if err := o.write(w, it); err != nil {
			return err
		}
	}
	if v := reflect.ValueOf(next); next == nil || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return nil
	}
	return o.write(w, map[string]any{"next": next})
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// newTable returns the tabwriter every table is printed with.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// fields prints "Label:  value" lines aligned in one column.
func fields(w io.Writer, rows [][2]string) error {
	tw := newTable(w)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// cell makes s fit in one table cell: line breaks and tabs become spaces,
// other non-printable characters are escaped (textsafe.Escape), and an empty
// s is "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return textsafe.Escape(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s))
}

// short is cell cut to at most n runes, with "..." when cut.
func short(s string, n int) string {
	s = cell(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}

// timeLayout is how times are printed in tables: UTC, milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z"

// fmtTime prints t in UTC, "-" when zero.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

// fmtFailure describes a failure on one line, "-" when nil.
func fmtFailure(f *engine.ErrorDetails) string {
	if f == nil {
		return "-"
	}
	return cell(fmt.Sprintf("[%s] %s", f.Category, f.Error()))
}

// fmtCustomStatus describes a custom status: its value and version, or
// "(not set)".
func fmtCustomStatus(s string, set bool, version int64) string {
	if !set {
		if version > 0 {
			return fmt.Sprintf("(cleared, version %d)", version)
		}
		return "(not set)"
	}
	return fmt.Sprintf("%s (version %d)", cell(s), version)
}

// customStatusPtr is the JSON form of a custom status: null when not set.
func customStatusPtr(s string, set bool) *string {
	if !set {
		return nil
	}
	return &s
}

// notFound shows a missing instance as one clear message, whatever the
// layers that wrapped it said (they each name the id); the error still
// matches client.ErrInstanceNotFound (exit status 3).
func notFound(id string, err error) error {
	if errors.Is(err, client.ErrInstanceNotFound) {
		return reword(err, "instance %q not found", id)
	}
	return err
}

// payloadArg returns a positional payload argument: "" when absent, the
// standard input when "-".
func payloadArg(cmd *cobra.Command, args []string, i int) (string, error) {
	if len(args) <= i {
		return "", nil
	}
	if args[i] != "-" {
		return args[i], nil
	}
	// One byte more than the limit and its trailing newline tells an
	// over-limit input without reading all of it.
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), client.MaxPayloadBytes+2))
	if err != nil {
		return "", fmt.Errorf("reading the payload from standard input: %w", err)
	}
	payload := strings.TrimSuffix(string(b), "\n")
	if len(payload) > client.MaxPayloadBytes {
		return "", usagef("the payload on standard input is more than %d bytes, the limit (client.MaxPayloadBytes)", client.MaxPayloadBytes)
	}
	return payload, nil
}

// jsonStatus is the JSON form of an instance's status.
type jsonStatus struct {
	InstanceID          string               `json:"instance_id"`
	Status              string               `json:"status"`
	Version             string               `json:"version,omitempty"`
	ExecutionID         int64                `json:"execution_id"`
	Output              string               `json:"output"`
	Failure             *engine.ErrorDetails `json:"failure,omitempty"`
	CustomStatus        *string              `json:"custom_status"`
	CustomStatusVersion int64                `json:"custom_status_version"`
}

func toJSONStatus(id string, st client.Status) jsonStatus {
	return jsonStatus{InstanceID: id, Status: string(st.State), Version: st.Version, ExecutionID: st.ExecutionID,
		Output: st.Output, Failure: st.Failure,
		CustomStatus: customStatusPtr(st.CustomStatus, st.CustomStatusSet), CustomStatusVersion: st.CustomStatusVersion}
}

// printStatus prints an instance's status as fields or JSON.
func printStatus(w io.Writer, format outputFormat, id string, st client.Status) error {
	if format.machine() {
		return format.write(w, toJSONStatus(id, st))
	}
	rows := [][2]string{
		{"Instance", cell(id)},
		{"Status", cell(string(st.State))},
		{"Version", cell(st.Version)},
		{"Execution", fmt.Sprint(st.ExecutionID)},
	}
	switch st.State {
	case client.StateCompleted:
		rows = append(rows, [2]string{"Output", cell(st.Output)})
	case client.StateFailed:
		rows = append(rows, [2]string{"Failure", fmtFailure(st.Failure)})
	}
	rows = append(rows, [2]string{"Custom status", fmtCustomStatus(st.CustomStatus, st.CustomStatusSet, st.CustomStatusVersion)})
	return fields(w, rows)
}

// jsonInstance is the JSON form of client.InstanceInfo.
type jsonInstance struct {
	InstanceID          string               `json:"instance_id"`
	Name                string               `json:"name"`
	Version             string               `json:"version,omitempty"`
	Status              string               `json:"status"`
	ExecutionID         int64                `json:"execution_id"`
	Output              string               `json:"output"`
	Failure             *engine.ErrorDetails `json:"failure,omitempty"`
	CreatedAt           time.Time            `json:"created_at,omitzero"`
	UpdatedAt           time.Time            `json:"updated_at,omitzero"`
	ParentInstanceID    string               `json:"parent_instance_id,omitempty"`
	EnginePin           string               `json:"engine_pin,omitempty"`
	CustomStatus        *string              `json:"custom_status"`
	CustomStatusVersion int64                `json:"custom_status_version"`
	Executions          []jsonExecution      `json:"executions,omitempty"`
}

func toJSONInstance(in client.InstanceInfo) jsonInstance {
	return jsonInstance{InstanceID: in.InstanceID, Name: in.OrchestrationName, Version: in.OrchestrationVersion,
		Status: string(in.Status), ExecutionID: in.CurrentExecutionID, Output: in.Output, Failure: in.Failure,
		CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt, ParentInstanceID: in.ParentInstanceID, EnginePin: in.EnginePin,
		CustomStatus: customStatusPtr(in.CustomStatus, in.CustomStatusSet), CustomStatusVersion: in.CustomStatusVersion}
}

// jsonExecution is the JSON form of client.ExecutionInfo.
type jsonExecution struct {
	ExecutionID int64                `json:"execution_id"`
	Status      string               `json:"status"`
	Output      string               `json:"output,omitempty"`
	Failure     *engine.ErrorDetails `json:"failure,omitempty"`
	StartedAt   time.Time            `json:"started_at,omitzero"`
	EndedAt     time.Time            `json:"ended_at,omitzero"`
	EventCount  int                  `json:"event_count"`
}

func toJSONExecution(e client.ExecutionInfo) jsonExecution {
	return jsonExecution{ExecutionID: e.ExecutionID, Status: string(e.Status), Output: e.Output, Failure: e.Failure,
		StartedAt: e.StartedAt, EndedAt: e.EndedAt, EventCount: e.EventCount}
}

// argsBetween accepts min to max positional arguments and otherwise names
// the command's usage.
func argsBetween(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && len(args) <= max {
			return nil
		}
		got := fmt.Sprintf("%d arguments", len(args))
		if len(args) == 1 {
			got = "1 argument"
		}
		return usagef("usage: %s (got %s; see --help)", cmd.UseLine(), got)
	}
}
