package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/report"
	"github.com/duroworker/duroworker/internal/redistest"
)

// miniConnect is a connect function for NewCommand that hands out a
// miniredis client and counts its calls.
func miniConnect(t *testing.T, calls *int) func(context.Context, string, io.Writer) (*redis.Client, string, func(), error) {
	mr, rdb := redistest.StartMini(t)
	return func(ctx context.Context, url string, log io.Writer) (*redis.Client, string, func(), error) {
		*calls++
		return rdb, "redis://" + mr.Addr() + "/0", func() {}, nil
	}
}

func runCommand(t *testing.T, connect func(context.Context, string, io.Writer) (*redis.Client, string, func(), error), args ...string) (string, string, error) {
	t.Helper()
	cmd := NewCommand(connect)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// TestCommandRunsAWorkloadAndReportsIt: "bench drain" through NewCommand
// runs on the Redis its connect function returns, prints the header and
// the table, writes the JSON file, and "bench report" reads it again.
func TestCommandRunsAWorkloadAndReportsIt(t *testing.T) {
	calls := 0
	connect := miniConnect(t, &calls)
	file := filepath.Join(t.TempDir(), "drain.json")
	out, errOut, err := runCommand(t, connect, "drain", "--n", "5", "--out", file)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	if calls != 1 || !strings.Contains(out, "duroworker engine ") || !strings.Contains(out, "drain 5x1") ||
		!strings.Contains(out, "orch/s") || !strings.Contains(out, "wrote "+file) {
		t.Fatalf("connect called %d times; stdout:\n%s", calls, out)
	}
	if !strings.Contains(errOut, "[run 1/1] drain 5x1 · duroworker (") || !strings.Contains(errOut, "completed 5/5") {
		t.Fatalf("stderr:\n%s", errOut)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rep report.File
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Completed != 5 || len(rep.Plan) != 1 || rep.Plan[0].ID != "drain" {
		t.Fatalf("report file: %+v", rep)
	}
	md, _, err := runCommand(t, connect, "report", file, "--markdown")
	if err != nil || !strings.Contains(md, "| drain 5x1 | orch/s |") {
		t.Fatalf("report --markdown: %v\n%s", err, md)
	}
}

// TestCommandRefusesBeforeConnecting: a flush of a given Redis without
// --flush, an unknown peer, an --only that matches nothing, a bad sweep
// list and an unknown --end are refused without connecting.
func TestCommandRefusesBeforeConnecting(t *testing.T) {
	calls := 0
	connect := miniConnect(t, &calls)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"drain", "--redis", "redis://127.0.0.1:1/0"}, "pass --flush"},
		{[]string{"drain", "--vs", "temporal"}, `--vs "temporal": want go-workflows and/or asynq`},
		{[]string{"all", "--only", "nosuch"}, `--only "nosuch" matches no case`},
		{[]string{"drain", "--gw-pollers", "2,x"}, `--gw-pollers "x": want positive integers`},
		{[]string{"drain", "--asynq-concurrency", "0"}, `--asynq-concurrency "0": want positive integers`},
		{[]string{"fanout", "--gw-retry", "sometimes"}, `--gw-retry "sometimes": want on, off or on,off`},
		{[]string{"steady", "--end", "later"}, `--end "later": want notify or wait`},
	} {
		_, _, err := runCommand(t, connect, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.args, err, c.want)
		}
	}
	if calls != 0 {
		t.Fatalf("connect called %d times", calls)
	}
}
