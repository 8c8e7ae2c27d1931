package jiffies_test

import (
	"fmt"

	"github.com/kdefer/kdefer/jiffies"
)

// A driver-style timeout: arm at boot, poll with the wrap-safe comparisons.
// The caller owns the clock; here it is a plain counter.
func Example() {
	hz := jiffies.DefaultHZ
	now := hz.InitialJiffies()
	timeout := now + hz.MsecsToJiffies(10) // 10 ms is 2.5 ticks: rounds up to 3

	fmt.Println("ticks:", timeout-now)
	for jiffies.TimeBefore(now, timeout) {
		now++
	}
	fmt.Println("expired after", hz.JiffiesToMsecs(now-hz.InitialJiffies()), "ms")
	fmt.Println("expired:", jiffies.TimeIsBeforeEqJiffies(now, timeout))
	// Output:
	// ticks: 3
	// expired after 12 ms
	// expired: true
}

// The 32-bit part of jiffies wraps five minutes after boot; the comparisons
// do not care.
func ExampleTimeAfter() {
	hz := jiffies.HZ1000
	before := hz.InitialJiffies() + hz.SecsToJiffies(300) - 1
	after := before + 2
	fmt.Printf("%#x %#x\n", uint32(before), uint32(after))
	fmt.Println(jiffies.TimeAfter(after, before), uint32(after) > uint32(before))
	// Output:
	// 0xffffffff 0x1
	// true false
}

func ExampleHZ_MsecsToJiffies() {
	for _, hz := range []jiffies.HZ{jiffies.HZ100, jiffies.HZ250, jiffies.HZ300, jiffies.HZ1000} {
		fmt.Println(hz, hz.MsecsToJiffies(1), hz.MsecsToJiffies(10), hz.MsecsToJiffies(1<<31) == jiffies.MaxJiffyOffset)
	}
	// Output:
	// 100 1 1 true
	// 250 1 3 true
	// 300 1 3 true
	// 1000 1 10 true
}

func ExampleHZ_RoundJiffies() {
	hz := jiffies.HZ250
	now := uint64(0)
	fmt.Println(hz.RoundJiffies(now, 1010, 0))   // just past a second: down
	fmt.Println(hz.RoundJiffies(now, 1100, 0))   // otherwise up
	fmt.Println(hz.RoundJiffiesUp(now, 1010, 0)) // never down
	fmt.Println(hz.RoundJiffies(now, 1100, 1))   // CPU 1 is skewed by 3
	// Output:
	// 1000
	// 1250
	// 1250
	// 1247
}

func ExampleHZ_Valid() {
	fmt.Println(jiffies.HZ(1024).Valid())
	// Output:
	// jiffies: invalid HZ: 1024 (allowed: 100, 250, 300, 1000)
}
