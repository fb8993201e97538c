package capability_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/duroworker/duroworker/capability"
)

// worker is a worker on engine 0.2.0 serving two orchestrations and two activities.
var worker = capability.Serves{
	Orchestrations: map[string][]string{
		"billing":    {"1.0.0", "1.1.0"},
		"ns:job@eu":  {"2.0.0"},
		"no-version": nil,
	},
	Activities:  []string{"send-email", "charge", "send-email"},
	ReplayRange: capability.UpTo(semver.MustParse("0.2.0")),
}

func TestOrchestrationBuckets(t *testing.T) {
	tests := []struct {
		desc string
		s    capability.Serves
		pins []string
		want []string
	}{
		{
			desc: "no pins",
			s:    worker,
			want: []string{
				"o:billing", "o:ns:job@eu",
				"v:billing@1.0.0", "v:billing@1.1.0", "v:ns:job@eu@2.0.0",
			},
		},
		{
			desc: "pins inside, outside, duplicated and unparsable",
			s:    worker,
			pins: []string{"0.2.0", "0.1.0", "0.3.0", "0.2.0", "latest", "v0.1.0", "0.2.0-rc.1", ""},
			want: []string{
				"o:billing", "o:ns:job@eu",
				"v:billing@1.0.0", "v:billing@1.1.0", "v:ns:job@eu@2.0.0",
				"x:billing@1.0.0@0.1.0", "x:billing@1.0.0@0.2.0", "x:billing@1.0.0@0.2.0-rc.1",
				"x:billing@1.1.0@0.1.0", "x:billing@1.1.0@0.2.0", "x:billing@1.1.0@0.2.0-rc.1",
				"x:ns:job@eu@2.0.0@0.1.0", "x:ns:job@eu@2.0.0@0.2.0", "x:ns:job@eu@2.0.0@0.2.0-rc.1",
			},
		},
		{
			desc: "replay range excludes old engines",
			s: capability.Serves{
				Orchestrations: map[string][]string{"billing": {"1.0.0"}},
				ReplayRange:    capability.MustRange("0.2.0", "0.3.0"),
			},
			pins: []string{"0.1.0", "0.2.0", "0.3.0", "0.4.0"},
			want: []string{"o:billing", "v:billing@1.0.0", "x:billing@1.0.0@0.2.0", "x:billing@1.0.0@0.3.0"},
		},
		{
			desc: "zero replay range serves no executions",
			s:    capability.Serves{Orchestrations: map[string][]string{"billing": {"1.0.0"}}},
			pins: []string{"0.0.0", "0.1.0"},
			want: []string{"o:billing", "v:billing@1.0.0"},
		},
		{
			desc: "duplicate versions",
			s: capability.Serves{
				Orchestrations: map[string][]string{"billing": {"1.0.0", "1.0.0"}},
				ReplayRange:    capability.UpTo(semver.MustParse("1.0.0")),
			},
			pins: []string{"1.0.0"},
			want: []string{"o:billing", "v:billing@1.0.0", "x:billing@1.0.0@1.0.0"},
		},
		{
			desc: "invalid names and versions are skipped",
			s: capability.Serves{
				Orchestrations: map[string][]string{
					"{bad}":    {"1.0.0"},
					"billing":  {"1.0.0", "v2", "latest"},
					"only-bad": {"1.0"},
				},
				ReplayRange: capability.UpTo(semver.MustParse("1.0.0")),
			},
			pins: []string{"1.0.0"},
			want: []string{"o:billing", "v:billing@1.0.0", "x:billing@1.0.0@1.0.0"},
		},
		{
			desc: "nothing registered",
			s:    capability.Serves{ReplayRange: capability.UpTo(semver.MustParse("1.0.0"))},
			pins: []string{"1.0.0"},
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got := tc.s.OrchestrationBuckets(tc.pins)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("OrchestrationBuckets(%q) mismatch (-want,+got)\n-%q\n+%q", tc.pins, tc.want, got)
			}
			for _, b := range got {
				if !tc.s.CanServe(b) {
					t.Errorf("CanServe(%q) = false for a listed bucket", b)
				}
			}
		})
	}
}

func TestActivityBuckets(t *testing.T) {
	tests := []struct {
		desc string
		s    capability.Serves
		want []string
	}{
		{desc: "sorted and deduplicated", s: worker, want: []string{"a:charge", "a:send-email"}},
		{desc: "names with colon and at", s: capability.Serves{Activities: []string{"x:y@1.0.0", "a"}}, want: []string{"a:a", "a:x:y@1.0.0"}},
		{desc: "invalid names skipped", s: capability.Serves{Activities: []string{"ok", "", "a{b}", "a\nb"}}, want: []string{"a:ok"}},
		{desc: "none", s: capability.Serves{}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := tc.s.ActivityBuckets(); !slices.Equal(got, tc.want) {
				t.Fatalf("ActivityBuckets() mismatch (-want,+got)\n-%q\n+%q", tc.want, got)
			}
		})
	}
}

func TestCanServe(t *testing.T) {
	tests := []struct {
		desc   string
		bucket string
		want   bool
	}{
		{desc: "start of registered name", bucket: "o:billing", want: true},
		{desc: "start of name with colon and at", bucket: "o:ns:job@eu", want: true},
		{desc: "start of unknown name", bucket: "o:shipping", want: false},
		{desc: "start of name without versions", bucket: "o:no-version", want: false},
		{desc: "registered version", bucket: "v:billing@1.1.0", want: true},
		{desc: "unregistered version", bucket: "v:billing@1.2.0", want: false},
		{desc: "version of another name", bucket: "v:ns:job@eu@1.0.0", want: false},
		{desc: "execution pinned inside range", bucket: "x:billing@1.0.0@0.1.0", want: true},
		{desc: "execution pinned at range max", bucket: "x:billing@1.0.0@0.2.0", want: true},
		{desc: "execution pinned above range", bucket: "x:billing@1.0.0@0.2.1", want: false},
		{desc: "execution pinned to a newer engine's prerelease", bucket: "x:billing@1.0.0@0.3.0-rc.1", want: false},
		{desc: "execution of unregistered version", bucket: "x:billing@9.0.0@0.1.0", want: false},
		{desc: "execution of name with at", bucket: "x:ns:job@eu@2.0.0@0.0.1", want: true},
		{desc: "registered activity", bucket: "a:charge", want: true},
		{desc: "unregistered activity", bucket: "a:refund", want: false},
		{desc: "orchestration name as activity", bucket: "a:billing", want: false},
		{desc: "activity name as orchestration", bucket: "o:charge", want: false},
		{desc: "malformed", bucket: "billing", want: false},
		{desc: "non-canonical version", bucket: "v:billing@v1.1.0", want: false},
		{desc: "empty", bucket: "", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := worker.CanServe(tc.bucket); got != tc.want {
				t.Errorf("CanServe(%q) = %v; want %v", tc.bucket, got, tc.want)
			}
		})
	}
}

func TestServesValidate(t *testing.T) {
	tests := []struct {
		desc    string
		s       capability.Serves
		wantErr []string // substrings of the message; none means valid
		is      []error
	}{
		{
			desc: "valid",
			s: capability.Serves{
				Orchestrations: map[string][]string{"billing": {"1.0.0"}},
				Activities:     []string{"charge"},
				ReplayRange:    capability.UpTo(semver.MustParse("0.1.0")),
			},
		},
		{
			desc: "every problem reported",
			s: capability.Serves{
				Orchestrations: map[string][]string{"a{b": {"1.0.0"}, "billing": {"v1"}, "empty": nil},
				Activities:     []string{"ok", ""},
			},
			wantErr: []string{
				`orchestration name "a{b" contains '{'`,
				`orchestration "billing": invalid version "v1"`,
				`orchestration "empty" has no versions`,
				"activity name is empty",
				"replay range [<nil>, <nil>] has a nil bound",
			},
			is: []error{capability.ErrInvalidName, capability.ErrInvalidVersion, capability.ErrInvalidRange},
		},
		{
			desc:    "inverted replay range",
			s:       capability.Serves{ReplayRange: capability.Range{Min: semver.MustParse("2.0.0"), Max: semver.MustParse("1.0.0")}},
			wantErr: []string{"minimum greater than maximum"},
			is:      []error{capability.ErrInvalidRange},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			err := tc.s.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want errors mentioning %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %v; want it to mention %q", err, want)
				}
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("Validate() = %v; want it to wrap %v", err, target)
				}
			}
		})
	}
}
