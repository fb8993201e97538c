//go:build !chaos

package chaos

// fullSize is false without the chaos build tag: TestChaos runs its short
// version (a few hundred instances, a few fault kinds) inside `make test`.
const fullSize = false
