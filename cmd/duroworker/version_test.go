package main

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/duroworker/duroworker/engine"
)

// fakeBuildInfo returns a debug.ReadBuildInfo stand-in with settings.
func fakeBuildInfo(version string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
	return func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{
			GoVersion: "go1.99.1",
			Path:      "github.com/duroworker/duroworker/cmd/duroworker",
			Main:      debug.Module{Path: "github.com/duroworker/duroworker", Version: version},
			Settings:  settings,
		}, true
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	dirty := buildVersionInfo(fakeBuildInfo("v1.4.0",
		debug.BuildSetting{Key: "vcs", Value: "git"},
		debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		debug.BuildSetting{Key: "vcs.time", Value: "2026-12-05T14:13:24Z"},
		debug.BuildSetting{Key: "vcs.modified", Value: "true"},
	))
	var text strings.Builder
	if err := writeVersion(&text, dirty, outputTable); err != nil {
		t.Fatal(err)
	}
	want := "duroworker engine " + engine.Version + "\n" +
		"module:  github.com/duroworker/duroworker v1.4.0\n" +
		"commit:  0123456789abcdef0123456789abcdef01234567-dirty\n" +
		"built:   2026-12-05T14:13:24Z\n" +
		"go:      go1.99.1 " + platform + "\n"
	if text.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", text.String(), want)
	}

	var js strings.Builder
	if err := writeVersion(&js, dirty, outputJSON); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(js.String()), &got); err != nil {
		t.Fatalf("json %q: %v", js.String(), err)
	}
	for k, v := range map[string]string{
		"engine": engine.Version, "module": "github.com/duroworker/duroworker", "module_version": "v1.4.0",
		"commit": "0123456789abcdef0123456789abcdef01234567-dirty", "build_time": "2026-12-05T14:13:24Z",
		"go": "go1.99.1", "platform": platform,
	} {
		if got[k] != v {
			t.Errorf("json %s = %q, want %q", k, got[k], v)
		}
	}

	clean := buildVersionInfo(fakeBuildInfo("(devel)",
		debug.BuildSetting{Key: "vcs.revision", Value: "abc"},
		debug.BuildSetting{Key: "vcs.modified", Value: "false"},
	))
	if clean.Commit != "abc" || clean.BuildTime != "" || clean.ModuleVersion != "(devel)" {
		t.Errorf("clean build: %+v", clean)
	}

	// No build info (or -buildvcs=false): the engine and Go versions still
	// print, the rest says unknown.
	none := buildVersionInfo(func() (*debug.BuildInfo, bool) { return nil, false })
	text.Reset()
	if err := writeVersion(&text, none, outputTable); err != nil {
		t.Fatal(err)
	}
	want = "duroworker engine " + engine.Version + "\nmodule:  unknown unknown\ncommit:  unknown\nbuilt:   unknown\ngo:      " + runtime.Version() + " " + platform + "\n"
	if text.String() != want {
		t.Errorf("no build info:\n%s\nwant:\n%s", text.String(), want)
	}
	js.Reset()
	if err := writeVersion(&js, none, outputJSON); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), "commit") || strings.Contains(js.String(), "build_time") {
		t.Errorf("json without VCS information has commit or build_time: %s", js.String())
	}
}
