package engine

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/internal/replay"
)

// DefaultVersion is the version given to orchestrations registered without one.
const DefaultVersion = "1.0.0"

// ErrNotRegistered is returned by registry lookups for an unknown name or a
// version that is not registered. Workers back off on it, so that a node that
// has the handler can take the work meanwhile.
var ErrNotRegistered = errors.New("not registered")

// OrchestrationFunc is an orchestration: deterministic code that is replayed
// from its history on every turn. See the package documentation for the rules.
type OrchestrationFunc func(ctx *OrchestrationContext, input string) (string, error)

// ActivityFunc is an activity: ordinary code that runs at least once.
type ActivityFunc func(ctx *ActivityContext, input string) (string, error)

// VersionPolicy says which version a new execution of an orchestration runs
// when none is given explicitly. The zero value is Latest.
type VersionPolicy struct {
	exact *semver.Version
}

// Latest resolves new executions to the highest registered version.
func Latest() VersionPolicy { return VersionPolicy{} }

// Exact pins new executions to version v. An invalid version is reported by
// the registry builder.
func Exact(v string) VersionPolicy {
	sv, err := semver.StrictNewVersion(v)
	if err != nil {
		return VersionPolicy{exact: &semver.Version{}} // reported by Build as unregistered
	}
	return VersionPolicy{exact: sv}
}

// IsExact reports whether the policy pins a version.
func (p VersionPolicy) IsExact() bool { return p.exact != nil }

// String returns "latest" or "exact(v)".
func (p VersionPolicy) String() string {
	if p.exact == nil {
		return "latest"
	}
	return "exact(" + p.exact.String() + ")"
}

type orchestrationVersion struct {
	version *semver.Version
	fn      OrchestrationFunc
}

type orchestrationEntry struct {
	versions []orchestrationVersion // ascending
	policy   VersionPolicy
}

// OrchestrationRegistry maps orchestration names to their versions. It is
// immutable once built and safe for concurrent use.
type OrchestrationRegistry struct {
	entries map[string]*orchestrationEntry
}

// OrchestrationRegistryBuilder collects registrations. Mistakes (duplicate or
// non-increasing versions, invalid or reserved names, a policy for an unknown
// version) are collected and reported together by Build.
type OrchestrationRegistryBuilder struct {
	entries  map[string]*orchestrationEntry
	policies map[string]VersionPolicy
	errs     []error
}

// NewOrchestrationRegistry starts an empty orchestration registry.
func NewOrchestrationRegistry() *OrchestrationRegistryBuilder {
	return &OrchestrationRegistryBuilder{
		entries:  map[string]*orchestrationEntry{},
		policies: map[string]VersionPolicy{},
	}
}

// Register registers fn as version 1.0.0 of name.
func (b *OrchestrationRegistryBuilder) Register(name string, fn OrchestrationFunc) *OrchestrationRegistryBuilder {
	return b.RegisterVersioned(name, DefaultVersion, fn)
}

// RegisterVersioned registers fn as the given semver version of name. Versions
// of one name must be registered in increasing order.
func (b *OrchestrationRegistryBuilder) RegisterVersioned(name, version string, fn OrchestrationFunc) *OrchestrationRegistryBuilder {
	if err := validateUserName("orchestration", name); err != nil {
		b.errs = append(b.errs, err)
		return b
	}
	v, err := semver.StrictNewVersion(version)
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("orchestration %q: version %q is not a semver version (want MAJOR.MINOR.PATCH): %v", name, version, err))
		return b
	}
	if fn == nil {
		b.errs = append(b.errs, fmt.Errorf("orchestration %q@%s: function is nil", name, version))
		return b
	}
	e := b.entries[name]
	if e == nil {
		e = &orchestrationEntry{}
		b.entries[name] = e
	}
	if n := len(e.versions); n > 0 {
		last := e.versions[n-1].version
		if v.Equal(last) {
			b.errs = append(b.errs, fmt.Errorf("orchestration %q: version %s registered twice", name, v))
			return b
		}
		if v.LessThan(last) {
			b.errs = append(b.errs, fmt.Errorf("orchestration %q: version %s registered after %s (versions must increase)", name, v, last))
			return b
		}
	}
	e.versions = append(e.versions, orchestrationVersion{version: v, fn: fn})
	return b
}

// RegisterTyped registers a typed orchestration as version 1.0.0 of name. The
// input is decoded with Decode and the output encoded with Encode; an input
// that does not decode fails the orchestration with an application error.
func RegisterTyped[In, Out any](b *OrchestrationRegistryBuilder, name string, fn func(*OrchestrationContext, In) (Out, error)) *OrchestrationRegistryBuilder {
	return RegisterVersionedTyped(b, name, DefaultVersion, fn)
}

// RegisterVersionedTyped registers a typed orchestration at the given version.
func RegisterVersionedTyped[In, Out any](b *OrchestrationRegistryBuilder, name, version string, fn func(*OrchestrationContext, In) (Out, error)) *OrchestrationRegistryBuilder {
	if fn == nil {
		return b.RegisterVersioned(name, version, nil)
	}
	return b.RegisterVersioned(name, version, typedOrchestration(fn))
}

func typedOrchestration[In, Out any](fn func(*OrchestrationContext, In) (Out, error)) OrchestrationFunc {
	return func(ctx *OrchestrationContext, input string) (string, error) {
		in, err := Decode[In](input)
		if err != nil {
			return "", ApplicationError(KindOrchestrationFailed, "invalid input: "+err.Error())
		}
		out, err := fn(ctx, in)
		if err != nil {
			return "", err
		}
		return Encode(out)
	}
}

// SetPolicy sets the version policy of name (default Latest).
func (b *OrchestrationRegistryBuilder) SetPolicy(name string, p VersionPolicy) *OrchestrationRegistryBuilder {
	b.policies[name] = p
	return b
}

// Build checks the registrations and returns the registry, or every mistake
// found, joined.
func (b *OrchestrationRegistryBuilder) Build() (*OrchestrationRegistry, error) {
	errs := append([]error(nil), b.errs...)
	names := make([]string, 0, len(b.policies))
	for name := range b.policies {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := b.policies[name]
		e := b.entries[name]
		if e == nil {
			errs = append(errs, fmt.Errorf("orchestration %q: policy %s set for an unregistered name", name, p))
			continue
		}
		if p.exact != nil && e.find(p.exact) == nil {
			errs = append(errs, fmt.Errorf("orchestration %q: policy %s names a version that is not registered", name, p))
			continue
		}
		e.policy = p
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("building orchestration registry: %w", errors.Join(errs...))
	}
	r := &OrchestrationRegistry{entries: make(map[string]*orchestrationEntry, len(b.entries))}
	for name, e := range b.entries {
		cp := *e
		cp.versions = append([]orchestrationVersion(nil), e.versions...)
		r.entries[name] = &cp
	}
	return r, nil
}

// MustBuild is Build that panics on error, for registries built at init time.
func (b *OrchestrationRegistryBuilder) MustBuild() *OrchestrationRegistry {
	r, err := b.Build()
	if err != nil {
		panic(err)
	}
	return r
}

func (e *orchestrationEntry) find(v *semver.Version) *orchestrationVersion {
	for i := range e.versions {
		if e.versions[i].version.Equal(v) {
			return &e.versions[i]
		}
	}
	return nil
}

// Resolve returns the function for name at version. An empty version resolves
// by the name's policy (Latest or Exact). The returned string is the resolved
// version, in canonical form. Errors wrap ErrNotRegistered.
func (r *OrchestrationRegistry) Resolve(name, version string) (OrchestrationFunc, string, error) {
	e := r.entries[name]
	if e == nil {
		return nil, "", fmt.Errorf("orchestration %q: %w", name, ErrNotRegistered)
	}
	var want *semver.Version
	switch {
	case version != "":
		v, err := semver.StrictNewVersion(version)
		if err != nil {
			return nil, "", fmt.Errorf("orchestration %q version %q: %w (not a semver version)", name, version, ErrNotRegistered)
		}
		want = v
	case e.policy.exact != nil:
		want = e.policy.exact
	default:
		last := e.versions[len(e.versions)-1]
		return last.fn, last.version.String(), nil
	}
	if ov := e.find(want); ov != nil {
		return ov.fn, ov.version.String(), nil
	}
	return nil, "", fmt.Errorf("orchestration %q version %s (registered: %s): %w",
		name, want, strings.Join(r.Versions(name), ", "), ErrNotRegistered)
}

// Names returns the registered orchestration names, sorted.
func (r *OrchestrationRegistry) Names() []string {
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Versions returns the registered versions of name in ascending order.
func (r *OrchestrationRegistry) Versions(name string) []string {
	e := r.entries[name]
	if e == nil {
		return nil
	}
	out := make([]string, len(e.versions))
	for i, v := range e.versions {
		out[i] = v.version.String()
	}
	return out
}

// Policy returns the version policy of name.
func (r *OrchestrationRegistry) Policy(name string) VersionPolicy {
	if e := r.entries[name]; e != nil {
		return e.policy
	}
	return VersionPolicy{}
}

// All returns every registered name with its versions, for capability
// advertisement.
func (r *OrchestrationRegistry) All() map[string][]string {
	out := make(map[string][]string, len(r.entries))
	for name := range r.entries {
		out[name] = r.Versions(name)
	}
	return out
}

// ActivityRegistry maps activity names to functions. Activities are not
// versioned. It is immutable once built and safe for concurrent use.
type ActivityRegistry struct {
	fns map[string]ActivityFunc
}

// ActivityRegistryBuilder collects activity registrations; mistakes are
// reported together by Build.
type ActivityRegistryBuilder struct {
	fns  map[string]ActivityFunc
	errs []error
}

// NewActivityRegistry starts an empty activity registry.
func NewActivityRegistry() *ActivityRegistryBuilder {
	return &ActivityRegistryBuilder{fns: map[string]ActivityFunc{}}
}

// Register registers fn under name.
func (b *ActivityRegistryBuilder) Register(name string, fn ActivityFunc) *ActivityRegistryBuilder {
	if err := validateUserName("activity", name); err != nil {
		b.errs = append(b.errs, err)
		return b
	}
	if fn == nil {
		b.errs = append(b.errs, fmt.Errorf("activity %q: function is nil", name))
		return b
	}
	if _, dup := b.fns[name]; dup {
		b.errs = append(b.errs, fmt.Errorf("activity %q registered twice", name))
		return b
	}
	b.fns[name] = fn
	return b
}

// RegisterActivityTyped registers a typed activity. An input that does not
// decode fails the activity with an application error.
func RegisterActivityTyped[In, Out any](b *ActivityRegistryBuilder, name string, fn func(*ActivityContext, In) (Out, error)) *ActivityRegistryBuilder {
	if fn == nil {
		return b.Register(name, nil)
	}
	return b.Register(name, func(ctx *ActivityContext, input string) (string, error) {
		in, err := Decode[In](input)
		if err != nil {
			return "", ApplicationError(KindActivityFailed, "invalid input: "+err.Error())
		}
		out, err := fn(ctx, in)
		if err != nil {
			return "", err
		}
		return Encode(out)
	})
}

// Build checks the registrations and returns the registry.
func (b *ActivityRegistryBuilder) Build() (*ActivityRegistry, error) {
	if len(b.errs) > 0 {
		return nil, fmt.Errorf("building activity registry: %w", errors.Join(b.errs...))
	}
	r := &ActivityRegistry{fns: make(map[string]ActivityFunc, len(b.fns))}
	for n, f := range b.fns {
		r.fns[n] = f
	}
	return r, nil
}

// MustBuild is Build that panics on error.
func (b *ActivityRegistryBuilder) MustBuild() *ActivityRegistry {
	r, err := b.Build()
	if err != nil {
		panic(err)
	}
	return r
}

// Lookup returns the activity registered under name; the error wraps
// ErrNotRegistered.
func (r *ActivityRegistry) Lookup(name string) (ActivityFunc, error) {
	if f, ok := r.fns[name]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("activity %q: %w", name, ErrNotRegistered)
}

// Names returns the registered activity names, sorted.
func (r *ActivityRegistry) Names() []string {
	names := make([]string, 0, len(r.fns))
	for n := range r.fns {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func validateUserName(kind, name string) error {
	if strings.HasPrefix(name, replay.ReservedPrefix) {
		return fmt.Errorf("%s %q: names starting with %q are reserved", kind, name, replay.ReservedPrefix)
	}
	return capability.ValidateName(kind, name)
}
