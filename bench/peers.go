package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/duroworker/duroworker/bench/internal/result"
	"github.com/duroworker/duroworker/bench/internal/workload"
)

// peerRunner runs the peer program (bench/peers/cmd/peerbench).
type peerRunner struct {
	binary   string
	tmpDir   string
	versions map[string]string
	settings map[string]string
}

// preparePeers builds the peer program (unless --peerbench names one) and
// asks it for the versions and settings of the peers.
func preparePeers(ctx context.Context, errOut io.Writer, cfg *config) (*peerRunner, error) {
	p := &peerRunner{binary: cfg.peerBinary}
	if p.binary == "" {
		dir := cfg.peersDir
		if dir == "" {
			var err error
			if dir, err = findPeersDir(); err != nil {
				return nil, err
			}
		}
		tmp, err := os.MkdirTemp("", "duroworker-peerbench-*")
		if err != nil {
			return nil, err
		}
		p.tmpDir = tmp
		p.binary = filepath.Join(tmp, "peerbench")
		fmt.Fprintf(errOut, "building the peer program in %s ...\n", dir)
		build, err := peerBuild(ctx, dir, tmp, p.binary)
		if err != nil {
			p.cleanup()
			return nil, err
		}
		build.Stdout, build.Stderr = errOut, errOut
		if err := build.Run(); err != nil {
			p.cleanup()
			return nil, fmt.Errorf("building bench/peers/cmd/peerbench in %s: %w", dir, err)
		}
	}
	out, err := exec.CommandContext(ctx, p.binary, "-info").Output()
	if err != nil {
		p.cleanup()
		return nil, fmt.Errorf("%s -info: %w", p.binary, err)
	}
	var info struct {
		Versions map[string]string `json:"versions"`
		Settings map[string]string `json:"settings"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		p.cleanup()
		return nil, fmt.Errorf("%s -info: %w", p.binary, err)
	}
	p.versions, p.settings = info.Versions, info.Settings
	return p, nil
}

// peerBuild returns the command that builds the peer program of the
// bench/peers module in dir into binary. -mod=mod may have to add
// requirements or checksums: it works on copies of go.mod and go.sum in tmp
// (-modfile), so that the user's checkout is never rewritten.
func peerBuild(ctx context.Context, dir, tmp, binary string) (*exec.Cmd, error) {
	modfile := filepath.Join(tmp, "go.mod")
	for _, f := range []struct {
		name     string
		required bool
	}{{"go.mod", true}, {"go.sum", false}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if errors.Is(err, fs.ErrNotExist) && !f.required {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("copying the peers module file: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f.name), b, 0o644); err != nil {
			return nil, fmt.Errorf("copying the peers module file: %w", err)
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-mod=mod", "-modfile="+modfile, "-o", binary, "./cmd/peerbench")
	build.Dir = dir
	return build, nil
}

func (p *peerRunner) cleanup() {
	if p.tmpDir != "" {
		_ = os.RemoveAll(p.tmpDir)
	}
}

// findPeersDir looks for bench/peers/go.mod from the working directory up.
func findPeersDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, "bench", "peers")
		if _, err := os.Stat(filepath.Join(cand, "go.mod")); err == nil {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("bench/peers not found from the working directory: run from the duroworker repository, or pass --peers-dir or --peerbench")
		}
		dir = parent
	}
}

// run runs one case on one peer; failures become a result with an error.
func (p *peerRunner) run(ctx context.Context, errOut io.Writer, redisURL, system string, c workload.Case, v peerVariant, cfg *config) result.Result {
	o := c.Opts
	args := []string{"-redis", redisURL, "-system", system, "-workload", c.Workload, "-case", c.Name,
		"-n", strconv.Itoa(o.N), "-k", strconv.Itoa(o.K), "-rate", strconv.FormatFloat(o.Rate, 'g', -1, 64),
		"-duration", o.Duration.String(), "-delay", o.Delay.String(), "-poll", cfg.poll.String(), "-timeout", cfg.timeout.String()}
	if o.Retry {
		args = append(args, "-retry")
	}
	if cfg.actConcurrency > 0 {
		args = append(args, "-concurrency", strconv.Itoa(cfg.actConcurrency))
	}
	args = append(args, v.args...) // the last -concurrency or -retry wins
	cmd := exec.CommandContext(ctx, p.binary, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = errOut
	failed := result.Result{Workload: c.Workload, System: system, Case: c.Name, Variant: v.label, Expected: 1}
	if err := cmd.Run(); err != nil {
		failed.Error = fmt.Sprintf("peerbench: %v", err)
		if rs, derr := result.DecodeResults(stdout.Bytes()); derr == nil && len(rs) == 1 {
			rs[0].Error = strings.TrimSpace(rs[0].Error + " " + failed.Error)
			rs[0].Variant = v.label
			return rs[0]
		}
		return failed
	}
	rs, err := result.DecodeResults(stdout.Bytes())
	if err != nil || len(rs) != 1 {
		failed.Error = fmt.Sprintf("peerbench output: %v", err)
		return failed
	}
	rs[0].Variant = v.label
	return rs[0]
}

// peerVariant is one setting of a peer at which a case runs: a label for
// the report ("pollers=8", "" for the peer's defaults) and the arguments
// that select it.
type peerVariant struct {
	label string
	args  []string
}

// sweeps are the peers' settings to run every case at (--gw-pollers,
// --gw-retry, --asynq-concurrency); an empty list runs the default.
type sweeps struct {
	gwPollers  []int
	gwRetry    []string // "on", "off"; empty: the case's own
	asynqConcs []int
}

// parseSweeps parses the sweep flags.
func parseSweeps(gwPollers, gwRetry, asynqConc string) (sweeps, error) {
	var s sweeps
	var err error
	if s.gwPollers, err = parseIntList("--gw-pollers", gwPollers); err != nil {
		return s, err
	}
	if s.asynqConcs, err = parseIntList("--asynq-concurrency", asynqConc); err != nil {
		return s, err
	}
	for _, v := range strings.Split(gwRetry, ",") {
		v = strings.TrimSpace(v)
		switch v {
		case "":
		case "on", "off":
			if !slices.Contains(s.gwRetry, v) {
				s.gwRetry = append(s.gwRetry, v)
			}
		default:
			return s, fmt.Errorf("--gw-retry %q: want on, off or on,off", v)
		}
	}
	return s, nil
}

// parseIntList parses "2,4,8" into distinct positive integers, in order.
func parseIntList(flag, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("%s %q: want positive integers (1..1024) separated by commas", flag, f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// variants returns the settings at which system runs case c: the cross
// product of its sweep lists, or its defaults (one variant, no label).
// --gw-retry applies to the fan-out cases only, whose activities have a
// retry policy; every other workload runs go-workflows with its retries
// as the case says (off unless the case has --retry), as duroworker does.
func (s sweeps) variants(system string, c workload.Case) []peerVariant {
	switch system {
	case result.SystemGoWorkflows:
		pollers := []string{""}
		if len(s.gwPollers) > 0 {
			pollers = pollers[:0]
			for _, n := range s.gwPollers {
				pollers = append(pollers, strconv.Itoa(n))
			}
		}
		retries := []string{""}
		if len(s.gwRetry) > 0 && c.Workload == result.WorkloadFanout {
			retries = s.gwRetry
		}
		var out []peerVariant
		for _, r := range retries {
			for _, p := range pollers {
				var v peerVariant
				var labels []string
				if p != "" {
					labels = append(labels, "pollers="+p)
					v.args = append(v.args, "-pollers", p)
				}
				if r != "" {
					labels = append(labels, "retry="+r)
					v.args = append(v.args, "-retry="+strconv.FormatBool(r == "on"))
				}
				v.label = strings.Join(labels, " ")
				out = append(out, v)
			}
		}
		return out
	case result.SystemAsynq:
		if len(s.asynqConcs) == 0 {
			return []peerVariant{{}}
		}
		var out []peerVariant
		for _, n := range s.asynqConcs {
			out = append(out, peerVariant{label: "concurrency=" + strconv.Itoa(n), args: []string{"-concurrency", strconv.Itoa(n)}})
		}
		return out
	}
	return []peerVariant{{}}
}
