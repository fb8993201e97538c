package capability

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
)

// CanonicalVersion checks that v is a MAJOR.MINOR.PATCH semver version and
// returns its canonical form ("" stays "": resolve by policy).
func CanonicalVersion(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	sv, err := semver.StrictNewVersion(v)
	if err != nil {
		return "", fmt.Errorf("version %q is not a semver version (want MAJOR.MINOR.PATCH)", v)
	}
	return sv.String(), nil
}

// Older reports whether version a is lower than version b; unparsable
// versions are never older.
func Older(a, b string) bool {
	va, errA := semver.StrictNewVersion(a)
	vb, errB := semver.StrictNewVersion(b)
	return errA == nil && errB == nil && va.LessThan(vb)
}
