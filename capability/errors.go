package capability

import "errors"

// Errors returned by this package. Every error it returns wraps one of these,
// so callers can test them with errors.Is; the message of the wrapping error
// names the offending input and the reason.
var (
	// ErrInvalidName reports an orchestration or activity name that cannot be
	// used in a bucket name; see ValidateName.
	ErrInvalidName = errors.New("invalid name")

	// ErrInvalidVersion reports a string that is not a semantic version.
	ErrInvalidVersion = errors.New("invalid version")

	// ErrInvalidRange reports a range that cannot be parsed or whose minimum
	// is greater than its maximum.
	ErrInvalidRange = errors.New("invalid version range")

	// ErrInvalidBucket reports a string that is not a well-formed bucket name.
	ErrInvalidBucket = errors.New("invalid bucket")

	// ErrNotPackable reports a version that has no packed form; see Pack.
	ErrNotPackable = errors.New("version not packable")
)
