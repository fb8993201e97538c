package capability

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Serves describes what a worker can serve: the orchestrations and versions
// its registry holds, the activities it has registered, and the range of
// replay-engine versions whose executions it may replay.
//
// The bucket methods skip what they cannot turn into a well-formed bucket
// (invalid names, versions not in canonical form, orchestrations with no
// versions); call Validate when the worker starts to report those mistakes.
type Serves struct {
	// Orchestrations maps each orchestration name to its registered versions,
	// in canonical form ((*semver.Version).String).
	Orchestrations map[string][]string
	// Activities lists the registered activity names.
	Activities []string
	// ReplayRange is the range of engine versions whose executions the worker
	// may replay; usually UpTo(the worker's own engine version). The zero
	// Range contains nothing.
	ReplayRange Range
}

// Validate reports every name and version in s that the bucket methods would
// skip, and a ReplayRange that contains nothing. It returns nil if there is
// none, else an error joining one error per problem.
func (s Serves) Validate() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.Orchestrations)) {
		if err := ValidateName("orchestration", name); err != nil {
			errs = append(errs, err)
			continue
		}
		versions := s.Orchestrations[name]
		if len(versions) == 0 {
			errs = append(errs, fmt.Errorf("%w: orchestration %q has no versions", ErrInvalidVersion, name))
		}
		for _, v := range versions {
			if _, err := parseCanonical(v); err != nil {
				errs = append(errs, fmt.Errorf("orchestration %q: %w", name, err))
			}
		}
	}
	for _, name := range s.Activities {
		if err := ValidateName("activity", name); err != nil {
			errs = append(errs, err)
		}
	}
	r := s.ReplayRange
	switch {
	case r.Min == nil || r.Max == nil:
		errs = append(errs, fmt.Errorf("%w: replay range %s has a nil bound and contains nothing; use UpTo(engine version)", ErrInvalidRange, r))
	case r.Min.GreaterThan(r.Max):
		errs = append(errs, fmt.Errorf("%w: replay range %s is empty: minimum greater than maximum", ErrInvalidRange, r))
	}
	return errors.Join(errs...)
}

// OrchestrationBuckets returns the orchestration buckets the worker may read:
// for each orchestration name, its StartBucket, a StartVersionBucket for each
// of its versions, and an ExecutionBucket for each version and each engine
// pin in enginePins that ReplayRange contains. Pins that are not semantic
// versions in canonical form are skipped, as are invalid names and versions.
// The result is sorted and holds no duplicates.
func (s Serves) OrchestrationBuckets(enginePins []string) []string {
	var pins []string
	for _, pin := range enginePins {
		if v, err := parseCanonical(pin); err == nil && s.ReplayRange.Contains(v) {
			pins = append(pins, pin)
		}
	}
	var out []string
	for name := range s.Orchestrations {
		versions := s.versions(name)
		if len(versions) == 0 {
			continue
		}
		out = append(out, StartBucket(name))
		for _, v := range versions {
			out = append(out, StartVersionBucket(name, v))
			for _, pin := range pins {
				out = append(out, ExecutionBucket(name, v, pin))
			}
		}
	}
	return sortCompact(out)
}

// ActivityBuckets returns the ActivityBucket of every valid activity name in
// s.Activities, sorted and without duplicates.
func (s Serves) ActivityBuckets() []string {
	var out []string
	for _, name := range s.Activities {
		if ValidateName("activity", name) == nil {
			out = append(out, ActivityBucket(name))
		}
	}
	return sortCompact(out)
}

// CanServe reports whether the worker may take work from bucket: whether
// bucket is one that OrchestrationBuckets (given the bucket's engine pin) or
// ActivityBuckets would list. It is false for a malformed bucket name. Use it
// when a wake-up names a bucket the worker has not listed yet.
func (s Serves) CanServe(bucket string) bool {
	b, err := ParseBucket(bucket)
	if err != nil {
		return false
	}
	switch b.Kind {
	case Start:
		return len(s.versions(b.Name)) > 0
	case StartVersion:
		return slices.Contains(s.versions(b.Name), b.Version)
	case Execution:
		if !slices.Contains(s.versions(b.Name), b.Version) {
			return false
		}
		engine, err := parseCanonical(b.Engine)
		return err == nil && s.ReplayRange.Contains(engine)
	case Activity:
		return slices.Contains(s.Activities, b.Name)
	}
	return false
}

// versions returns the valid versions registered for the orchestration name,
// or nil if the name is invalid or not registered.
func (s Serves) versions(name string) []string {
	if ValidateName("orchestration", name) != nil {
		return nil
	}
	var out []string
	for _, v := range s.Orchestrations[name] {
		if _, err := parseCanonical(v); err == nil {
			out = append(out, v)
		}
	}
	return out
}

func sortCompact(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
