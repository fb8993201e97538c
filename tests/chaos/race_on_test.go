//go:build race

package chaos

// raceEnabled tells whether this test binary was built with -race; the
// worker binary is then built with -race too.
const raceEnabled = true
