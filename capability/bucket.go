package capability

import (
	"fmt"
	"strings"
)

// Kind is the kind of work a ready bucket holds.
type Kind int

// The kinds of ready buckets. The zero Kind is not valid.
const (
	// Start holds new executions whose version the worker's registry policy
	// resolves: "o:<name>".
	Start Kind = iota + 1
	// StartVersion holds new executions of an explicit version:
	// "v:<name>@<version>".
	StartVersion
	// Execution holds running executions of one orchestration version,
	// pinned to one engine version: "x:<name>@<version>@<engine>".
	Execution
	// Activity holds untagged activities: "a:<name>".
	Activity
	// TaggedActivity holds activities scheduled with a tag, for workers that
	// serve the tag: "t:<tag>#<name>".
	TaggedActivity
)

// String returns "start", "start-version", "execution" or "activity".
func (k Kind) String() string {
	switch k {
	case Start:
		return "start"
	case StartVersion:
		return "start-version"
	case Execution:
		return "execution"
	case Activity:
		return "activity"
	case TaggedActivity:
		return "tagged-activity"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Bucket is a parsed ready-bucket name.
type Bucket struct {
	Kind Kind
	// Name is the orchestration or activity name.
	Name string
	// Version is the orchestration version, for StartVersion and Execution
	// buckets, in canonical form.
	Version string
	// Engine is the pinned replay-engine version, for Execution buckets, in
	// canonical form.
	Engine string
	// Tag is the activity tag, for TaggedActivity buckets.
	Tag string
}

// StartBucket returns the bucket of new executions of orchestration name
// whose version is resolved by the worker's registry policy: "o:" + name.
//
// Like the other bucket builders it does not validate its arguments: validate
// names with ValidateName first, and pass versions in canonical form
// ((*semver.Version).String), or ParseBucket will reject the result.
func StartBucket(name string) string {
	return "o:" + name
}

// StartVersionBucket returns the bucket of new executions of an explicit
// version of orchestration name: "v:" + name + "@" + version.
func StartVersionBucket(name, version string) string {
	return "v:" + name + "@" + version
}

// ExecutionBucket returns the bucket of running executions of orchestration
// name at version, pinned to replay-engine version engine:
// "x:" + name + "@" + version + "@" + engine.
func ExecutionBucket(name, version, engine string) string {
	return "x:" + name + "@" + version + "@" + engine
}

// ActivityBucket returns the bucket of activity name: "a:" + name.
func ActivityBucket(name string) string {
	return "a:" + name
}

// String returns the bucket name, the inverse of ParseBucket. It returns ""
// if b.Kind is not valid.
func (b Bucket) String() string {
	switch b.Kind {
	case Start:
		return StartBucket(b.Name)
	case StartVersion:
		return StartVersionBucket(b.Name, b.Version)
	case Execution:
		return ExecutionBucket(b.Name, b.Version, b.Engine)
	case Activity:
		return ActivityBucket(b.Name)
	case TaggedActivity:
		return TaggedActivityBucket(b.Name, b.Tag)
	}
	return ""
}

// ParseBucket parses a bucket name built by StartBucket, StartVersionBucket,
// ExecutionBucket or ActivityBucket.
//
// The kind is the two-byte prefix ("o:", "v:", "x:", "a:"). Versions are split
// off from the right, at the last '@' (and for Execution buckets the one
// before it), because a semantic version never contains '@'; the name is the
// rest and may itself contain '@' and ':'. The name must pass ValidateName and
// every version must be a semantic version in canonical form. The error wraps
// ErrInvalidBucket.
func ParseBucket(s string) (Bucket, error) {
	b, err := parseBucket(s)
	if err != nil {
		return Bucket{}, fmt.Errorf("%w %q: %w", ErrInvalidBucket, s, err)
	}
	return b, nil
}

func parseBucket(s string) (Bucket, error) {
	if len(s) < 2 || s[1] != ':' {
		return Bucket{}, fmt.Errorf("no kind prefix (want o:, v:, x: or a:)")
	}
	var b Bucket
	rest := s[2:]
	switch s[0] {
	case 'o':
		b.Kind, b.Name = Start, rest
	case 'v':
		b.Kind = StartVersion
		name, version, ok := cutLast(rest, '@')
		if !ok {
			return Bucket{}, fmt.Errorf("missing '@' before the version")
		}
		b.Name, b.Version = name, version
	case 'x':
		b.Kind = Execution
		rest, engine, ok := cutLast(rest, '@')
		if !ok {
			return Bucket{}, fmt.Errorf("missing '@' before the engine version")
		}
		name, version, ok := cutLast(rest, '@')
		if !ok {
			return Bucket{}, fmt.Errorf("missing '@' before the orchestration version")
		}
		b.Name, b.Version, b.Engine = name, version, engine
	case 'a':
		b.Kind, b.Name = Activity, rest
	case 't':
		tag, name, ok := strings.Cut(rest, "#")
		if !ok {
			return Bucket{}, fmt.Errorf("missing '#' after the tag")
		}
		if err := ValidateTag(tag); err != nil {
			return Bucket{}, err
		}
		b.Kind, b.Tag, b.Name = TaggedActivity, tag, name
	default:
		return Bucket{}, fmt.Errorf("unknown kind prefix %q (want o:, v:, x:, a: or t:)", s[:2])
	}
	kind := "orchestration"
	if b.Kind == Activity || b.Kind == TaggedActivity {
		kind = "activity"
	}
	if err := ValidateName(kind, b.Name); err != nil {
		return Bucket{}, err
	}
	if b.Kind == StartVersion || b.Kind == Execution {
		if _, err := parseCanonical(b.Version); err != nil {
			return Bucket{}, fmt.Errorf("orchestration version: %w", err)
		}
	}
	if b.Kind == Execution {
		if _, err := parseCanonical(b.Engine); err != nil {
			return Bucket{}, fmt.Errorf("engine version: %w", err)
		}
	}
	return b, nil
}

// ActivityBucketFor returns the bucket of an activity scheduled with tag:
// ActivityBucket for no tag, TaggedActivityBucket otherwise.
func ActivityBucketFor(name, tag string) string {
	if tag == "" {
		return ActivityBucket(name)
	}
	return TaggedActivityBucket(name, tag)
}

// TaggedActivityBucket returns the bucket of activity name scheduled with
// tag: "t:" + tag + "#" + name. Tags cannot contain '#' (ValidateTag), so the
// first '#' ends the tag and names may contain '#'.
func TaggedActivityBucket(name, tag string) string {
	return "t:" + tag + "#" + name
}

// MaxTagLen is the longest accepted activity tag, in bytes.
const MaxTagLen = 256

// ValidateTag checks an activity tag: 1 to MaxTagLen bytes, without '#',
// '{', '}' or line breaks. The error wraps ErrInvalidName.
func ValidateTag(tag string) error {
	switch {
	case tag == "":
		return fmt.Errorf("%w: activity tag is empty", ErrInvalidName)
	case len(tag) > MaxTagLen:
		return fmt.Errorf("%w: activity tag is %d bytes (max %d)", ErrInvalidName, len(tag), MaxTagLen)
	case strings.ContainsAny(tag, "#{}\n\r"):
		return fmt.Errorf("%w: activity tag %q contains '#', '{', '}' or a line break", ErrInvalidName, tag)
	}
	return nil
}

// cutLast slices s around the last instance of sep.
func cutLast(s string, sep byte) (before, after string, found bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}
