//go:build chaos

package chaos

// fullSize is true with the chaos build tag (`make chaos`): TestChaos runs
// 10,000 instances through every fault kind.
const fullSize = true
