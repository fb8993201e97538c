package capability

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Range is an inclusive range of semantic versions: it contains v when
// Min <= v <= Max in semver precedence (build metadata is ignored, and a
// prerelease sorts before its release, so [0.0.0, 1.0.0] contains 1.0.0-rc.1
// but [0.0.0, 1.0.0-rc.1] does not contain 1.0.0).
//
// A Range with a nil bound, such as the zero Range, contains nothing: a worker
// that forgot to set its replay range serves no running executions rather
// than replaying executions pinned to an engine it does not know. Build ranges
// with NewRange, ParseRange or UpTo.
//
// Range implements encoding.TextMarshaler and encoding.TextUnmarshaler in the
// form printed by String, so it can be used with flag.TextVar and in
// configuration files.
type Range struct {
	Min, Max *semver.Version
}

// NewRange returns the inclusive range [min, max]. Both bounds are parsed
// leniently ("1.2" means 1.2.0, a leading "v" is allowed). It returns an error
// wrapping ErrInvalidRange if a bound does not parse or min > max.
func NewRange(min, max string) (Range, error) {
	r, err := newRange(min, max)
	if err != nil {
		return Range{}, fmt.Errorf("%w: %w", ErrInvalidRange, err)
	}
	return r, nil
}

// newRange is NewRange without ErrInvalidRange in its errors.
func newRange(min, max string) (Range, error) {
	lo, err := parseVersion(min)
	if err != nil {
		return Range{}, fmt.Errorf("minimum: %w", err)
	}
	hi, err := parseVersion(max)
	if err != nil {
		return Range{}, fmt.Errorf("maximum: %w", err)
	}
	if lo.GreaterThan(hi) {
		return Range{}, fmt.Errorf("minimum %s is greater than maximum %s", lo, hi)
	}
	return Range{Min: lo, Max: hi}, nil
}

// MustRange is like NewRange but panics if the range is invalid. It is meant
// for constants in tests and program initialisation.
func MustRange(min, max string) Range {
	r, err := NewRange(min, max)
	if err != nil {
		panic(err)
	}
	return r
}

// UpTo returns [0.0.0, v], the default supported replay range of a worker
// whose own engine version is v: everything up to and including v. If v is
// nil the range contains nothing.
func UpTo(v *semver.Version) Range {
	return Range{Min: semver.New(0, 0, 0, "", ""), Max: v}
}

// ParseRange parses a range given on a command line or in a configuration
// file. It accepts three forms, with optional spaces around each bound:
//
//	0.1.0..1.2.3    the recommended form: ".." never occurs in a version
//	0.1.0-1.2.3     a hyphen, accepted only when exactly one hyphen splits the
//	                text into two versions ("1.0.0-rc.1-2.0.0" is fine,
//	                "1-2-3" is ambiguous and rejected; use ".." then)
//	[0.1.0, 1.2.3]  the form printed by String
//
// Bounds are parsed as in NewRange, and min must not exceed max. The returned
// error wraps ErrInvalidRange.
func ParseRange(s string) (Range, error) {
	t := strings.TrimSpace(s)
	if lo, hi, ok := strings.Cut(t, ".."); ok {
		return newRangeIn(s, lo, hi)
	}
	if inner, ok := strings.CutPrefix(t, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		lo, hi, found := strings.Cut(inner, ",")
		if !ok || !found {
			return Range{}, fmt.Errorf("%w %q: want \"[MIN, MAX]\"", ErrInvalidRange, s)
		}
		return newRangeIn(s, lo, hi)
	}
	var lo, hi string
	splits := 0
	for i := 0; i < len(t); i++ {
		if t[i] != '-' {
			continue
		}
		l, h := strings.TrimSpace(t[:i]), strings.TrimSpace(t[i+1:])
		if _, err := parseVersion(l); err != nil {
			continue
		}
		if _, err := parseVersion(h); err != nil {
			continue
		}
		lo, hi = l, h
		splits++
	}
	switch splits {
	case 0:
		return Range{}, fmt.Errorf("%w %q: want MIN..MAX, MIN-MAX or [MIN, MAX]", ErrInvalidRange, s)
	case 1:
		return newRangeIn(s, lo, hi)
	default:
		return Range{}, fmt.Errorf("%w %q: ambiguous hyphen; write MIN..MAX", ErrInvalidRange, s)
	}
}

// newRangeIn is NewRange with the original text s in the error message.
func newRangeIn(s, lo, hi string) (Range, error) {
	r, err := newRange(strings.TrimSpace(lo), strings.TrimSpace(hi))
	if err != nil {
		return Range{}, fmt.Errorf("%w %q: %w", ErrInvalidRange, s, err)
	}
	return r, nil
}

// Contains reports whether Min <= v <= Max. It is false if v or either bound
// is nil.
func (r Range) Contains(v *semver.Version) bool {
	if v == nil || r.Min == nil || r.Max == nil {
		return false
	}
	return r.Min.Compare(v) <= 0 && v.Compare(r.Max) <= 0
}

// ContainsString parses s leniently, as NewRange does, and reports whether the
// range contains it. The error wraps ErrInvalidVersion.
func (r Range) ContainsString(s string) (bool, error) {
	v, err := parseVersion(s)
	if err != nil {
		return false, err
	}
	return r.Contains(v), nil
}

// String returns the range as "[MIN, MAX]", for example "[0.0.0, 0.1.0]".
// A nil bound prints as "<nil>".
func (r Range) String() string {
	return "[" + versionString(r.Min) + ", " + versionString(r.Max) + "]"
}

// MarshalText returns the form printed by String. It fails for a range with a
// nil bound, which could not be parsed back.
func (r Range) MarshalText() ([]byte, error) {
	if r.Min == nil || r.Max == nil {
		return nil, fmt.Errorf("%w: %s has a nil bound", ErrInvalidRange, r)
	}
	return []byte(r.String()), nil
}

// UnmarshalText sets r from any form that ParseRange accepts.
func (r *Range) UnmarshalText(text []byte) error {
	parsed, err := ParseRange(string(text))
	if err != nil {
		return err
	}
	*r = parsed
	return nil
}

// parseVersion parses s leniently and wraps failures in ErrInvalidVersion.
func parseVersion(s string) (*semver.Version, error) {
	v, err := semver.NewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidVersion, s, err)
	}
	return v, nil
}

// parseCanonical parses s strictly, as it must appear in a bucket name: the
// form printed by (*semver.Version).String, with no leading "v" and no
// missing or zero-padded components.
func parseCanonical(s string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidVersion, s, err)
	}
	if v.String() != s {
		return nil, fmt.Errorf("%w %q: not in canonical form %q", ErrInvalidVersion, s, v.String())
	}
	return v, nil
}

func versionString(v *semver.Version) string {
	if v == nil {
		return "<nil>"
	}
	return v.String()
}
