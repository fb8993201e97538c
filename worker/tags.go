package worker

import (
	"fmt"
	"sort"

	"github.com/duroworker/duroworker/capability"
)

// MaxWorkerTags bounds the tags one worker lists.
const MaxWorkerTags = 32

type tagMode int

const (
	tagsDefaultOnly tagMode = iota
	tagsOnly
	tagsDefaultAnd
	tagsAny
	tagsNone
)

// TagFilter says which activities a worker runs by tag. Activities are
// scheduled untagged (the default) or with a tag
// (engine.WithTag) to reach specialized workers (GPU nodes, a
// region). The zero value is DefaultTagsOnly.
type TagFilter struct {
	mode tagMode
	tags []string
}

// DefaultTagsOnly runs only untagged activities (the default).
func DefaultTagsOnly() TagFilter { return TagFilter{} }

// OnlyTags runs only activities with one of tags.
func OnlyTags(tags ...string) TagFilter { return TagFilter{mode: tagsOnly, tags: tags} }

// DefaultAndTags runs untagged activities and those with one of tags.
func DefaultAndTags(tags ...string) TagFilter { return TagFilter{mode: tagsDefaultAnd, tags: tags} }

// AnyTag runs activities whatever their tag.
func AnyTag() TagFilter { return TagFilter{mode: tagsAny} }

// NoActivities runs no activities at all (an orchestration-only worker).
func NoActivities() TagFilter { return TagFilter{mode: tagsNone} }

// String describes the filter.
func (f TagFilter) String() string {
	switch f.mode {
	case tagsOnly:
		return fmt.Sprintf("only %v", f.tags)
	case tagsDefaultAnd:
		return fmt.Sprintf("default and %v", f.tags)
	case tagsAny:
		return "any"
	case tagsNone:
		return "none"
	}
	return "default only"
}

func (f TagFilter) validate() error {
	if (f.mode == tagsOnly || f.mode == tagsDefaultAnd) && (len(f.tags) == 0 || len(f.tags) > MaxWorkerTags) {
		return fmt.Errorf("tag filter %s: list 1 to %d tags", f, MaxWorkerTags)
	}
	for _, t := range f.tags {
		if err := capability.ValidateTag(t); err != nil {
			return fmt.Errorf("tag filter: %w", err)
		}
	}
	return nil
}

// buckets returns the activity buckets the filter serves for the registered
// activity names; known lists every work bucket in the store (used by
// AnyTag to find tagged buckets).
func (f TagFilter) buckets(names []string, known []string) []string {
	if f.mode == tagsNone {
		return nil
	}
	var out []string
	for _, n := range names {
		if f.mode != tagsOnly {
			out = append(out, capability.ActivityBucket(n))
		}
		if f.mode == tagsOnly || f.mode == tagsDefaultAnd {
			for _, t := range f.tags {
				out = append(out, capability.TaggedActivityBucket(n, t))
			}
		}
	}
	if f.mode == tagsAny {
		registered := map[string]bool{}
		for _, n := range names {
			registered[n] = true
		}
		for _, b := range known {
			if pb, err := capability.ParseBucket(b); err == nil && pb.Kind == capability.TaggedActivity && registered[pb.Name] {
				out = append(out, b)
			}
		}
	}
	sort.Strings(out)
	return out
}

// activityBucketFor is the bucket an activity request is queued in.
func activityBucketFor(name, tag string) string { return capability.ActivityBucketFor(name, tag) }
