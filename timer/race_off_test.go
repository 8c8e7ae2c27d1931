//go:build !race

package timer

// raceEnabled: see race_on_test.go.
const raceEnabled = false
