package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/engine"
)

// versionInfo is what `duroworker version` prints.
type versionInfo struct {
	// Engine is engine.Version: the replay engine every execution is
	// pinned to.
	Engine string `json:"engine"`
	// Module and ModuleVersion are the main module's path and version as
	// the Go toolchain recorded them ("(devel)" or a pseudo-version for a
	// build from a checkout).
	Module        string `json:"module"`
	ModuleVersion string `json:"module_version"`
	// Commit is vcs.revision, with "-dirty" when vcs.modified; empty when
	// the binary was built without VCS information (-buildvcs=false, or
	// outside a checkout).
	Commit string `json:"commit,omitempty"`
	// BuildTime is vcs.time: the commit's time (RFC 3339), not the
	// compilation's.
	BuildTime string `json:"build_time,omitempty"`
	// Go is the toolchain version; Platform is GOOS/GOARCH.
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildVersionInfo collects the version information from read (normally
// debug.ReadBuildInfo; tests pass a fake).
func buildVersionInfo(read func() (*debug.BuildInfo, bool)) versionInfo {
	v := versionInfo{Engine: engine.Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := read()
	if !ok || bi == nil {
		return v
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	v.Module, v.ModuleVersion = bi.Main.Path, bi.Main.Version
	var revision, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		case "vcs.time":
			v.BuildTime = s.Value
		}
	}
	if revision != "" {
		v.Commit = revision
		if modified == "true" {
			v.Commit += "-dirty"
		}
	}
	return v
}

// writeVersion prints v to w: as one JSON object under -o json or jsonl,
// else as lines whose first is "duroworker engine VERSION".
func writeVersion(w io.Writer, v versionInfo, format outputFormat) error {
	if format.machine() {
		return format.write(w, v)
	}
	or := func(s, fallback string) string {
		if s == "" {
			return fallback
		}
		return s
	}
	_, err := fmt.Fprintf(w, "duroworker engine %s\nmodule:  %s %s\ncommit:  %s\nbuilt:   %s\ngo:      %s %s\n",
		v.Engine, or(v.Module, "unknown"), or(v.ModuleVersion, "unknown"),
		or(v.Commit, "unknown"), or(v.BuildTime, "unknown"), v.Go, v.Platform)
	return err
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the engine version, the build's module version and commit, and the Go version",
		Long: `Print the version of duroworker's replay engine (engine.Version, which every
history event records and every execution is pinned to), then what the Go
toolchain recorded in this binary: the main module and its version, the VCS
commit ("-dirty" when the checkout had local changes) and the commit's time,
and the Go version and platform that built it. "unknown" means the build
recorded no such information (e.g. -buildvcs=false, or no checkout). With
-o json or jsonl it prints the same as one JSON object.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeVersion(cmd.OutOrStdout(), buildVersionInfo(debug.ReadBuildInfo), outputFor(cmd))
		},
	}
}
