package capability_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/duroworker/duroworker/capability"
)

func TestBucketBuilders(t *testing.T) {
	tests := []struct {
		desc string
		got  string
		want string
	}{
		{desc: "start", got: capability.StartBucket("billing"), want: "o:billing"},
		{desc: "start version", got: capability.StartVersionBucket("billing", "1.0.2"), want: "v:billing@1.0.2"},
		{desc: "execution", got: capability.ExecutionBucket("billing", "1.0.2", "0.1.0"), want: "x:billing@1.0.2@0.1.0"},
		{desc: "activity", got: capability.ActivityBucket("send-email"), want: "a:send-email"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q; want %q", tc.got, tc.want)
			}
		})
	}
}

func TestParseBucket(t *testing.T) {
	tests := []struct {
		desc string
		s    string
		want capability.Bucket
	}{
		{desc: "start", s: "o:billing",
			want: capability.Bucket{Kind: capability.Start, Name: "billing"}},
		{desc: "start with colon and at", s: "o:svc:billing@eu",
			want: capability.Bucket{Kind: capability.Start, Name: "svc:billing@eu"}},
		{desc: "start name looking like another kind", s: "o:x:a@1.0.0@1.0.0",
			want: capability.Bucket{Kind: capability.Start, Name: "x:a@1.0.0@1.0.0"}},
		{desc: "start version", s: "v:billing@1.0.2",
			want: capability.Bucket{Kind: capability.StartVersion, Name: "billing", Version: "1.0.2"}},
		{desc: "start version with at in name", s: "v:a@b:c@@2.0.0-rc.1+build.5",
			want: capability.Bucket{Kind: capability.StartVersion, Name: "a@b:c@", Version: "2.0.0-rc.1+build.5"}},
		{desc: "execution", s: "x:billing@1.0.2@0.1.0",
			want: capability.Bucket{Kind: capability.Execution, Name: "billing", Version: "1.0.2", Engine: "0.1.0"}},
		{desc: "execution with at and colon in name", s: "x:ns:job@eu@3@1.0.0@0.2.0-dev",
			want: capability.Bucket{Kind: capability.Execution, Name: "ns:job@eu@3", Version: "1.0.0", Engine: "0.2.0-dev"}},
		{desc: "activity", s: "a:send-email",
			want: capability.Bucket{Kind: capability.Activity, Name: "send-email"}},
		{desc: "activity with colon and at", s: "a:a:b@c",
			want: capability.Bucket{Kind: capability.Activity, Name: "a:b@c"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := capability.ParseBucket(tc.s)
			if err != nil {
				t.Fatalf("ParseBucket(%q): %v", tc.s, err)
			}
			if got != tc.want {
				t.Fatalf("ParseBucket(%q) mismatch (-want,+got)\n-%#v\n+%#v", tc.s, tc.want, got)
			}
			if s := got.String(); s != tc.s {
				t.Errorf("ParseBucket(%q).String() = %q; want the input back", tc.s, s)
			}
		})
	}
}

func TestParseBucketErrors(t *testing.T) {
	tests := []struct {
		desc    string
		s       string
		wantErr string // substring of the message
	}{
		{desc: "empty", s: "", wantErr: "no kind prefix"},
		{desc: "no colon", s: "obilling", wantErr: "no kind prefix"},
		{desc: "unknown kind", s: "q:billing", wantErr: `unknown kind prefix "q:"`},
		{desc: "empty name", s: "o:", wantErr: "name is empty"},
		{desc: "brace in name", s: "a:{p0}", wantErr: "contains '{'"},
		{desc: "newline in name", s: "o:a\nb", wantErr: "line break"},
		{desc: "too long name", s: "o:" + strings.Repeat("n", capability.MaxNameLen+1), wantErr: "bytes long"},
		{desc: "start version without version", s: "v:billing", wantErr: "missing '@' before the version"},
		{desc: "start version with empty version", s: "v:billing@", wantErr: "orchestration version"},
		{desc: "start version with empty name", s: "v:@1.0.0", wantErr: "name is empty"},
		{desc: "start version not semver", s: "v:billing@latest", wantErr: "orchestration version"},
		{desc: "start version not canonical", s: "v:billing@v1.0.0", wantErr: "orchestration version"},
		{desc: "start version short", s: "v:billing@1.0", wantErr: "orchestration version"},
		{desc: "execution without engine", s: "x:billing@1.0.0", wantErr: "missing '@' before the orchestration version"},
		{desc: "execution without any at", s: "x:billing", wantErr: "missing '@' before the engine version"},
		{desc: "execution with bad engine", s: "x:billing@1.0.0@01.0.0", wantErr: "engine version"},
		{desc: "execution with empty name", s: "x:@1.0.0@1.0.0", wantErr: "name is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := capability.ParseBucket(tc.s)
			if !errors.Is(err, capability.ErrInvalidBucket) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseBucket(%q) = %#v, %v; want ErrInvalidBucket mentioning %q", tc.s, got, err, tc.wantErr)
			}
		})
	}
}

func TestBucketRoundTrip(t *testing.T) {
	names := []string{"n", "a:b", "a@b", "@", ":", "a@1.0.0", "x:y@1.0.0@2.0.0", "o:", "ü@:ß", strings.Repeat("@:", capability.MaxNameLen/2)}
	versions := []string{"0.0.0", "1.2.3", "1.0.0-rc.1", "2.0.0+meta", "3.0.0-a-b.c+d-e"}
	for _, name := range names {
		for _, version := range versions {
			for _, engine := range versions {
				want := []capability.Bucket{
					{Kind: capability.Start, Name: name},
					{Kind: capability.StartVersion, Name: name, Version: version},
					{Kind: capability.Execution, Name: name, Version: version, Engine: engine},
					{Kind: capability.Activity, Name: name},
				}
				for _, b := range want {
					got, err := capability.ParseBucket(b.String())
					if err != nil || got != b {
						t.Fatalf("ParseBucket(%q) = %#v, %v; want %#v", b.String(), got, err, b)
					}
				}
			}
		}
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    capability.Kind
		want string
	}{
		{capability.Start, "start"},
		{capability.StartVersion, "start-version"},
		{capability.Execution, "execution"},
		{capability.Activity, "activity"},
		{capability.Kind(0), "Kind(0)"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.k.String(); got != tc.want {
				t.Errorf("Kind(%d).String() = %q; want %q", int(tc.k), got, tc.want)
			}
		})
	}
}

func TestBucketStringInvalidKind(t *testing.T) {
	if got := (capability.Bucket{Name: "n"}).String(); got != "" {
		t.Errorf("Bucket{Kind: 0}.String() = %q; want \"\"", got)
	}
}

// FuzzParseBucket checks that every bucket ParseBucket accepts prints back to
// itself and cannot change a Redis hash tag.
func FuzzParseBucket(f *testing.F) {
	for _, s := range []string{"o:billing", "v:a@b@1.0.0", "x:ns:job@eu@1.0.0-rc.1@0.1.0", "a:x", "x:@@", "v:{}@1.0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := capability.ParseBucket(s)
		if err != nil {
			return
		}
		if got := b.String(); got != s {
			t.Fatalf("ParseBucket(%q).String() = %q", s, got)
		}
		if strings.ContainsAny(s, "{}\n\r") {
			t.Fatalf("ParseBucket(%q) accepted a brace or line break", s)
		}
	})
}
