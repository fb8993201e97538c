package capability_test

import (
	"cmp"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/duroworker/duroworker/capability"
)

func TestPack(t *testing.T) {
	tests := []struct {
		desc    string
		v       *semver.Version
		want    int64
		wantErr bool
	}{
		{desc: "zero", v: semver.MustParse("0.0.0"), want: 0},
		{desc: "patch", v: semver.MustParse("0.0.1"), want: 1},
		{desc: "minor", v: semver.MustParse("0.1.0"), want: 1 << 16},
		{desc: "major", v: semver.MustParse("1.0.0"), want: 1 << 32},
		{desc: "mixed", v: semver.MustParse("1.2.3"), want: 1<<32 | 2<<16 | 3},
		{desc: "largest", v: semver.MustParse("65535.65535.65535"), want: capability.MaxPacked},
		{desc: "build metadata ignored", v: semver.MustParse("1.2.3+build.9"), want: 1<<32 | 2<<16 | 3},
		{desc: "major too large", v: semver.MustParse("65536.0.0"), wantErr: true},
		{desc: "minor too large", v: semver.MustParse("0.65536.0"), wantErr: true},
		{desc: "patch too large", v: semver.MustParse("0.0.65536"), wantErr: true},
		{desc: "prerelease", v: semver.MustParse("1.0.0-rc.1"), wantErr: true},
		{desc: "nil", v: nil, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := capability.Pack(tc.v)
			if tc.wantErr {
				if !errors.Is(err, capability.ErrNotPackable) {
					t.Fatalf("Pack(%v) = %d, %v; want error wrapping ErrNotPackable", tc.v, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Pack(%v) = %d, %v; want %d, nil", tc.v, got, err, tc.want)
			}
			if f := float64(got); int64(f) != got || f >= 1<<53 {
				t.Errorf("Pack(%v) = %d is not exact in a double", tc.v, got)
			}
		})
	}
}

func TestPackPrereleaseMessage(t *testing.T) {
	_, err := capability.Pack(semver.MustParse("1.0.0-rc.1"))
	want := `version not packable: 1.0.0-rc.1 has prerelease "rc.1", and a packed integer cannot sort a prerelease before its release`
	if err == nil || err.Error() != want {
		t.Errorf("Pack(1.0.0-rc.1) error = %v; want %s", err, want)
	}
}

func TestUnpack(t *testing.T) {
	tests := []struct {
		desc string
		p    int64
		want string // "" for nil
	}{
		{desc: "zero", p: 0, want: "0.0.0"},
		{desc: "mixed", p: 1<<32 | 2<<16 | 3, want: "1.2.3"},
		{desc: "largest", p: capability.MaxPacked, want: "65535.65535.65535"},
		{desc: "negative", p: -1},
		{desc: "too large", p: capability.MaxPacked + 1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got := capability.Unpack(tc.p)
			if tc.want == "" {
				if got != nil {
					t.Fatalf("Unpack(%d) = %v; want nil", tc.p, got)
				}
				return
			}
			if got == nil || got.String() != tc.want {
				t.Fatalf("Unpack(%d) = %v; want %s", tc.p, got, tc.want)
			}
		})
	}
}

// packable returns versions at the edges of each component and random ones.
func packable() []*semver.Version {
	edges := []uint64{0, 1, 2, 255, 256, 1000, 65534, 65535}
	var vs []*semver.Version
	for _, major := range edges {
		for _, minor := range edges {
			for _, patch := range edges {
				vs = append(vs, semver.New(major, minor, patch, "", ""))
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		vs = append(vs, semver.New(rng.Uint64N(1<<16), rng.Uint64N(1<<16), rng.Uint64N(1<<16), "", ""))
	}
	return vs
}

func TestPackRoundTrip(t *testing.T) {
	for _, v := range packable() {
		p, err := capability.Pack(v)
		if err != nil {
			t.Fatalf("Pack(%s): %v", v, err)
		}
		if got := capability.Unpack(p); got == nil || !got.Equal(v) {
			t.Fatalf("Unpack(Pack(%s)) = %v", v, got)
		}
	}
}

func TestPackPreservesOrder(t *testing.T) {
	vs := packable()
	packed := make([]int64, len(vs))
	for i, v := range vs {
		p, err := capability.Pack(v)
		if err != nil {
			t.Fatalf("Pack(%s): %v", v, err)
		}
		packed[i] = p
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		i, j := rng.IntN(len(vs)), rng.IntN(len(vs))
		want := vs[i].Compare(vs[j])
		got := cmp.Compare(packed[i], packed[j])
		if got != want {
			t.Fatalf("%s vs %s: semver says %d, packed (%d vs %d) says %d", vs[i], vs[j], want, packed[i], packed[j], got)
		}
		// Lua compares doubles: the order must hold there too.
		if f := cmp.Compare(float64(packed[i]), float64(packed[j])); f != want {
			t.Fatalf("%s vs %s: semver says %d, packed doubles say %d", vs[i], vs[j], want, f)
		}
	}
}
