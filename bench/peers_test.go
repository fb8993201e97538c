package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duroworker/duroworker/bench/internal/result"
	"github.com/duroworker/duroworker/bench/internal/workload"
)

// TestBenchPeersBuildLeavesTheCheckoutAlone: building the peer program
// (bench --vs) never rewrites go.mod or go.sum of the peers module, even
// when -mod=mod has checksums to add. Not parallel (Setenv).
func TestBenchPeersBuildLeavesTheCheckoutAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	// A peers module whose go.sum is missing: -mod=mod would write one.
	dir := t.TempDir()
	gomod := "module example.com/fakepeers\n\ngo 1.26.8\n\nrequire github.com/spf13/pflag v1.0.9\n"
	main := `package main

import (
	"flag"
	"fmt"

	"github.com/spf13/pflag"
)

func main() {
	flag.Bool("info", false, "")
	flag.Parse()
	_ = pflag.CommandLine
	fmt.Println(` + "`" + `{"versions":{"fake":"1"},"settings":{}}` + "`" + `)
}
`
	if err := os.MkdirAll(filepath.Join(dir, "cmd", "peerbench"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmd", "peerbench", "main.go"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	// Offline: the module is in the module cache (it is a dependency of
	// the CLI).
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOWORK", "off")

	var log bytes.Buffer
	p, err := preparePeers(context.Background(), &log, &config{peersDir: dir})
	if err != nil {
		t.Fatalf("preparing the peers: %v\n%s", err, log.String())
	}
	defer p.cleanup()
	if p.versions["fake"] != "1" {
		t.Errorf("peer info: %+v", p.versions)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil || string(b) != gomod {
		t.Errorf("go.mod of the peers module changed: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); !os.IsNotExist(err) {
		t.Errorf("go.sum written in the peers module: %v", err)
	}
}

// TestParseSweeps: the sweep flags take distinct positive integers and
// on/off, and refuse anything else.
func TestParseSweeps(t *testing.T) {
	s, err := parseSweeps(" 2,4, 8,4 ,32", "on,off", "16,64")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.gwPollers) != "[2 4 8 32]" || fmt.Sprint(s.gwRetry) != "[on off]" || fmt.Sprint(s.asynqConcs) != "[16 64]" {
		t.Fatalf("%+v", s)
	}
	if s, err := parseSweeps("", "", ""); err != nil || len(s.gwPollers)+len(s.gwRetry)+len(s.asynqConcs) != 0 {
		t.Fatalf("empty flags: %+v %v", s, err)
	}
	for _, bad := range [][3]string{{"0", "", ""}, {"two", "", ""}, {"", "maybe", ""}, {"", "", "-1"}} {
		if _, err := parseSweeps(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("parseSweeps%q: no error", bad)
		}
	}
}

// TestSweepVariants: go-workflows runs once per poller count (both kinds
// of pollers), and per retry setting only in fan-out cases; asynq once per
// concurrency; without sweep flags each peer runs once at its defaults.
func TestSweepVariants(t *testing.T) {
	s, err := parseSweeps("2,8", "on,off", "16,32")
	if err != nil {
		t.Fatal(err)
	}
	labels := func(vs []peerVariant) string {
		var out []string
		for _, v := range vs {
			out = append(out, v.label+"="+strings.Join(v.args, " "))
		}
		return strings.Join(out, "; ")
	}
	drain := workload.Case{Workload: result.WorkloadDrain}
	fanout := workload.Case{Workload: result.WorkloadFanout, Opts: workload.Options{Retry: true}}
	for _, tc := range []struct {
		system string
		c      workload.Case
		want   string
	}{
		{result.SystemGoWorkflows, drain, "pollers=2=-pollers 2; pollers=8=-pollers 8"},
		{result.SystemGoWorkflows, fanout, "pollers=2 retry=on=-pollers 2 -retry=true; pollers=8 retry=on=-pollers 8 -retry=true; " +
			"pollers=2 retry=off=-pollers 2 -retry=false; pollers=8 retry=off=-pollers 8 -retry=false"},
		{result.SystemAsynq, drain, "concurrency=16=-concurrency 16; concurrency=32=-concurrency 32"},
	} {
		if got := labels(s.variants(tc.system, tc.c)); got != tc.want {
			t.Errorf("%s %s:\n got %s\nwant %s", tc.system, tc.c.Workload, got, tc.want)
		}
	}
	var none sweeps
	for _, sys := range []string{result.SystemGoWorkflows, result.SystemAsynq} {
		if vs := none.variants(sys, fanout); len(vs) != 1 || vs[0].label != "" || len(vs[0].args) != 0 {
			t.Errorf("%s without sweeps: %+v", sys, vs)
		}
	}
}
