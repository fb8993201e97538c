package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
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
