package capability

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
)

// MaxComponent is the largest major, minor or patch number that Pack accepts.
const MaxComponent = 1<<16 - 1

// MaxPacked is the largest value Pack returns, the packed form of
// 65535.65535.65535. It is below 2^53, so every packed version is an exact
// integer in a double, and thus in a Lua number.
const MaxPacked int64 = MaxComponent<<32 | MaxComponent<<16 | MaxComponent

// Pack returns the packed numeric form of v, major<<32 | minor<<16 | patch,
// which Lua scripts compare with < and >. For the versions Pack accepts,
// packed order equals semver order. Build metadata is ignored, as semver
// precedence ignores it.
//
// Pack fails, with an error wrapping ErrNotPackable, if v is nil, if any of
// major, minor or patch exceeds MaxComponent (65535), or if v has a
// prerelease: a prerelease sorts after every lower release but before its
// own (0.9.0 < 1.0.0-rc.1 < 1.0.0), and prerelease identifiers are
// unbounded, so no integer of this width can keep semver order for them.
func Pack(v *semver.Version) (int64, error) {
	if v == nil {
		return 0, fmt.Errorf("%w: nil version", ErrNotPackable)
	}
	if v.Prerelease() != "" {
		return 0, fmt.Errorf("%w: %s has prerelease %q, and a packed integer cannot sort a prerelease before its release",
			ErrNotPackable, v, v.Prerelease())
	}
	for _, c := range []struct {
		name string
		n    uint64
	}{{"major", v.Major()}, {"minor", v.Minor()}, {"patch", v.Patch()}} {
		if c.n > MaxComponent {
			return 0, fmt.Errorf("%w: %s has %s %d, more than %d",
				ErrNotPackable, v, c.name, c.n, MaxComponent)
		}
	}
	return int64(v.Major())<<32 | int64(v.Minor())<<16 | int64(v.Patch()), nil
}

// Unpack is the inverse of Pack: it returns the version major.minor.patch
// packed in p. It returns nil if p is negative or greater than MaxPacked,
// since Pack returns no such value.
func Unpack(p int64) *semver.Version {
	if p < 0 || p > MaxPacked {
		return nil
	}
	return semver.New(uint64(p>>32), uint64(p>>16&MaxComponent), uint64(p&MaxComponent), "", "")
}
