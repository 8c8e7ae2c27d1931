package timer

import "testing"

// FuzzWheelAgainstSortedModel decodes the input into a sequence of
// mod/mod_pending/reduce/delete/tick/idle/late-softirq/callback-action
// operations on up to 16 timers with a random HZ and start time, and runs
// it against the naive model of wheel_model_test.go.
//
//	go test ./timer -run '^$' -fuzz FuzzWheelAgainstSortedModel -fuzztime 60s
func FuzzWheelAgainstSortedModel(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 0, 0, 0, 0, 1, 5, 0, 1, 7, 5, 1, 7})
	f.Add([]byte{1, 1, 16, 0, 0, 3, 0, 2, 9, 3, 1, 0, 5, 6, 3, 3, 0, 5, 0, 6, 0, 1, 255, 255, 255, 3})
	f.Add([]byte{0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 5, 3, 9, 1, 1, 1, 0, 50, 0, 2, 4, 200, 10, 0, 6, 2, 33, 7, 7, 7})
	f.Add([]byte{2, 0, 9, 0, 2, 0, 0, 9, 1, 3, 0, 6, 0, 0, 7, 0, 0, 0, 0, 0, 0, 7, 3, 2, 6, 2, 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		runModel(t, &fuzzSource{data: data}, 4000)
	})
}
