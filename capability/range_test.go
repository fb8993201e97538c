package capability_test

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/duroworker/duroworker/capability"
)

func TestNewRange(t *testing.T) {
	tests := []struct {
		desc     string
		min, max string
		want     string // String() of the range, or "" when an error is expected
	}{
		{desc: "ordinary", min: "0.0.0", max: "0.1.0", want: "[0.0.0, 0.1.0]"},
		{desc: "single version", min: "1.2.3", max: "1.2.3", want: "[1.2.3, 1.2.3]"},
		{desc: "lenient bounds", min: "v1", max: "2.1", want: "[1.0.0, 2.1.0]"},
		{desc: "prerelease bounds", min: "1.0.0-alpha", max: "1.0.0-beta", want: "[1.0.0-alpha, 1.0.0-beta]"},
		{desc: "prerelease below release", min: "1.0.0-rc.1", max: "1.0.0", want: "[1.0.0-rc.1, 1.0.0]"},
		{desc: "min greater than max", min: "0.2.0", max: "0.1.0"},
		{desc: "release greater than its prerelease", min: "1.0.0", max: "1.0.0-rc.1"},
		{desc: "bad min", min: "x", max: "1.0.0"},
		{desc: "bad max", min: "1.0.0", max: "1.0.0.0"},
		{desc: "empty min", min: "", max: "1.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r, err := capability.NewRange(tc.min, tc.max)
			if tc.want == "" {
				if !errors.Is(err, capability.ErrInvalidRange) {
					t.Fatalf("NewRange(%q, %q) = %v, %v; want error wrapping ErrInvalidRange", tc.min, tc.max, r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRange(%q, %q): %v", tc.min, tc.max, err)
			}
			if got := r.String(); got != tc.want {
				t.Errorf("NewRange(%q, %q) = %s; want %s", tc.min, tc.max, got, tc.want)
			}
		})
	}
}

func TestMustRangePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustRange(\"2.0.0\", \"1.0.0\") did not panic")
		}
	}()
	capability.MustRange("2.0.0", "1.0.0")
}

func TestRangeContains(t *testing.T) {
	r := capability.MustRange("0.1.0", "1.2.3")
	tests := []struct {
		desc string
		r    capability.Range
		v    *semver.Version
		want bool
	}{
		{desc: "min is included", r: r, v: semver.MustParse("0.1.0"), want: true},
		{desc: "max is included", r: r, v: semver.MustParse("1.2.3"), want: true},
		{desc: "inside", r: r, v: semver.MustParse("1.0.0"), want: true},
		{desc: "just below min", r: r, v: semver.MustParse("0.0.65535"), want: false},
		{desc: "just above max", r: r, v: semver.MustParse("1.2.4"), want: false},
		{desc: "prerelease of max is inside", r: r, v: semver.MustParse("1.2.3-rc.1"), want: true},
		{desc: "prerelease of min is outside", r: r, v: semver.MustParse("0.1.0-rc.1"), want: false},
		{desc: "build metadata is ignored", r: r, v: semver.MustParse("1.2.3+build.7"), want: true},
		{desc: "nil version", r: r, v: nil, want: false},
		{desc: "zero range contains nothing", r: capability.Range{}, v: semver.MustParse("0.0.0"), want: false},
		{desc: "nil max contains nothing", r: capability.UpTo(nil), v: semver.MustParse("0.0.0"), want: false},
		{desc: "inverted literal range contains nothing", r: capability.Range{Min: semver.MustParse("2.0.0"), Max: semver.MustParse("1.0.0")}, v: semver.MustParse("1.5.0"), want: false},
		{desc: "UpTo includes zero", r: capability.UpTo(semver.MustParse("0.3.0")), v: semver.MustParse("0.0.0"), want: true},
		{desc: "UpTo includes its version", r: capability.UpTo(semver.MustParse("0.3.0")), v: semver.MustParse("0.3.0"), want: true},
		{desc: "UpTo excludes the next patch", r: capability.UpTo(semver.MustParse("0.3.0")), v: semver.MustParse("0.3.1"), want: false},
		{desc: "UpTo a prerelease excludes its release", r: capability.UpTo(semver.MustParse("0.3.0-dev")), v: semver.MustParse("0.3.0"), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := tc.r.Contains(tc.v); got != tc.want {
				t.Errorf("%s.Contains(%v) = %v; want %v", tc.r, tc.v, got, tc.want)
			}
		})
	}
}

func TestRangeContainsString(t *testing.T) {
	r := capability.MustRange("0.1.0", "1.2.3")
	tests := []struct {
		desc    string
		s       string
		want    bool
		wantErr bool
	}{
		{desc: "inside", s: "1.0.0", want: true},
		{desc: "lenient inside", s: "v1.2", want: true},
		{desc: "outside", s: "2.0.0", want: false},
		{desc: "not a version", s: "latest", wantErr: true},
		{desc: "empty", s: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := r.ContainsString(tc.s)
			if tc.wantErr {
				if !errors.Is(err, capability.ErrInvalidVersion) {
					t.Fatalf("ContainsString(%q) = %v, %v; want error wrapping ErrInvalidVersion", tc.s, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ContainsString(%q) = %v, %v; want %v, nil", tc.s, got, err, tc.want)
			}
		})
	}
}

func TestRangeString(t *testing.T) {
	tests := []struct {
		desc string
		r    capability.Range
		want string
	}{
		{desc: "ordinary", r: capability.MustRange("0.0.0", "0.1.0"), want: "[0.0.0, 0.1.0]"},
		{desc: "canonical bounds", r: capability.MustRange("v1", "1.2"), want: "[1.0.0, 1.2.0]"},
		{desc: "UpTo", r: capability.UpTo(semver.MustParse("2.0.0")), want: "[0.0.0, 2.0.0]"},
		{desc: "zero", r: capability.Range{}, want: "[<nil>, <nil>]"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := tc.r.String(); got != tc.want {
				t.Errorf("String() = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		desc string
		s    string
		want string // String() of the range, or "" when an error is expected
	}{
		{desc: "dots", s: "0.0.0..99.0.0", want: "[0.0.0, 99.0.0]"},
		{desc: "dots with spaces", s: " 0.1.0 .. 0.2.0 ", want: "[0.1.0, 0.2.0]"},
		{desc: "dots with prereleases", s: "1.0.0-rc.1..2.0.0-beta", want: "[1.0.0-rc.1, 2.0.0-beta]"},
		{desc: "hyphen", s: "0.0.0-99.0.0", want: "[0.0.0, 99.0.0]"},
		{desc: "hyphen with spaces", s: "0.0.0 - 1.0.0", want: "[0.0.0, 1.0.0]"},
		{desc: "hyphen after prerelease min", s: "1.0.0-rc.1-2.0.0", want: "[1.0.0-rc.1, 2.0.0]"},
		{desc: "hyphen before prerelease max", s: "1.0.0-2.0.0-rc.1", want: "[1.0.0, 2.0.0-rc.1]"},
		{desc: "String form", s: "[0.0.0, 0.1.0]", want: "[0.0.0, 0.1.0]"},
		{desc: "String form without space", s: "[0.0.0,0.1.0]", want: "[0.0.0, 0.1.0]"},
		{desc: "single version by dots", s: "1.0.0..1.0.0", want: "[1.0.0, 1.0.0]"},
		{desc: "ambiguous hyphen", s: "1-2-3"},
		{desc: "inverted", s: "2.0.0..1.0.0"},
		{desc: "inverted hyphen", s: "2.0.0-1.0.0"},
		{desc: "single version", s: "1.0.0"},
		{desc: "empty", s: ""},
		{desc: "missing max", s: "1.0.0.."},
		{desc: "missing min", s: "..1.0.0"},
		{desc: "three bounds", s: "1.0.0..2.0.0..3.0.0"},
		{desc: "unclosed bracket", s: "[1.0.0, 2.0.0"},
		{desc: "bracket without comma", s: "[1.0.0 2.0.0]"},
		{desc: "garbage", s: "latest"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r, err := capability.ParseRange(tc.s)
			if tc.want == "" {
				if !errors.Is(err, capability.ErrInvalidRange) {
					t.Fatalf("ParseRange(%q) = %v, %v; want error wrapping ErrInvalidRange", tc.s, r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRange(%q): %v", tc.s, err)
			}
			if got := r.String(); got != tc.want {
				t.Errorf("ParseRange(%q) = %s; want %s", tc.s, got, tc.want)
			}
			again, err := capability.ParseRange(r.String())
			if err != nil || again.String() != r.String() {
				t.Errorf("ParseRange(%q) = %v, %v; want the range back", r.String(), again, err)
			}
		})
	}
}

func TestRangeText(t *testing.T) {
	tests := []struct {
		desc    string
		r       capability.Range
		want    string
		wantErr bool
	}{
		{desc: "ordinary", r: capability.MustRange("0.1.0", "0.2.0"), want: "[0.1.0, 0.2.0]"},
		{desc: "nil bound", r: capability.UpTo(nil), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			b, err := tc.r.MarshalText()
			if tc.wantErr {
				if !errors.Is(err, capability.ErrInvalidRange) {
					t.Fatalf("MarshalText() = %q, %v; want error wrapping ErrInvalidRange", b, err)
				}
				return
			}
			if err != nil || string(b) != tc.want {
				t.Fatalf("MarshalText() = %q, %v; want %q, nil", b, err, tc.want)
			}
			var back capability.Range
			if err := back.UnmarshalText(b); err != nil || back.String() != tc.want {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %s", b, back, err, tc.want)
			}
		})
	}
}

func TestRangeFlag(t *testing.T) {
	tests := []struct {
		desc    string
		args    []string
		want    string
		wantErr bool
	}{
		{desc: "default", args: nil, want: "[0.0.0, 0.1.0]"},
		{desc: "dots", args: []string{"-replay-range", "0.0.0..1.0.0"}, want: "[0.0.0, 1.0.0]"},
		{desc: "hyphen", args: []string{"-replay-range=0.0.0-2.0.0"}, want: "[0.0.0, 2.0.0]"},
		{desc: "invalid", args: []string{"-replay-range=2.0.0..1.0.0"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var r capability.Range
			fs.TextVar(&r, "replay-range", capability.MustRange("0.0.0", "0.1.0"), "replay range")
			err := fs.Parse(tc.args)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Parse(%q) = nil; want an error", tc.args)
				}
				return
			}
			if err != nil || r.String() != tc.want {
				t.Errorf("Parse(%q) = %v with range %s; want %s", tc.args, err, r, tc.want)
			}
		})
	}
}
