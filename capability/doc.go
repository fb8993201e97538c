// Package capability owns versions and ranges: the replay-engine version
// pinned on each execution, inclusive semver ranges, what a worker can serve,
// the names of the ready buckets that route work to capable workers, and the
// packed numeric form of a version that Lua scripts compare.
//
// # Engine pinning and replay ranges
//
// Every execution is pinned to the replay-engine version of the worker that
// started it. A worker replays only executions whose pin lies inside its
// supported [Range]; the default is [UpTo] its own engine version, so an
// execution started by an upgraded worker is never replayed by an older one.
//
// # Ready buckets
//
// Work waits in ready buckets, and a bucket name says what a worker must be
// able to do to take the work:
//
//	o:<name>                    a new execution; the worker's registry policy picks the version
//	v:<name>@<version>          a new execution of an explicit version
//	x:<name>@<version>@<engine> a running execution of that version, pinned to that engine version
//	a:<name>                    an activity
//
// A worker reads only the buckets that [Serves.OrchestrationBuckets] and
// [Serves.ActivityBuckets] list, so incompatible work is never fetched, however
// much of it waits. The encoding is unambiguous although names may contain
// ':' and '@': the kind is the fixed two-byte prefix, and versions are split
// off from the right, at the last '@', because a semantic version never
// contains '@'. Names never contain '{', '}' or line breaks ([ValidateName]),
// so a bucket name never changes the hash tag of a Redis key built from it.
// Versions in bucket names are in canonical form, as printed by
// (*semver.Version).String; [ParseBucket] rejects any other form.
//
// # Packed versions
//
// [Pack] turns major.minor.patch into major<<32 | minor<<16 | patch. The
// result is below 2^48, an exact integer in a Lua number (a double), and
// packed order equals semver order, so a Lua script can compare versions
// with < and >.
package capability
