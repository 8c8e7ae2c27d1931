//go:build race

package timer

// raceEnabled: the race detector is on. The long single-goroutine model
// checks (the wheel against its model, the arm path against the wheel's
// steps, Mod's inline path against the generic one) then run a quarter
// of their steps: they have no concurrency for the detector to check,
// and at its 5–10× slowdown their full length would not fit the default
// test timeout at -count=20 on a loaded 2-core machine. Without -race
// they run in full.
const raceEnabled = true
