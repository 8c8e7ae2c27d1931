package printk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/kdefer/kdefer/printk"
)

// op is one call on a Ring in a line-assembly case.
type op struct {
	kind     string // "emit", "cont" or "flush"
	t        int64
	level    printk.Level
	cpu, pid int
	text     string
}

func emit(t int64, level printk.Level, cpu, pid int, text string) op {
	return op{"emit", t, level, cpu, pid, text}
}
func cont(t int64, cpu, pid int, text string) op { return op{"cont", t, 0, cpu, pid, text} }
func flush() op                                  { return op{kind: "flush"} }

func apply(r *printk.Ring, ops []op) {
	for _, o := range ops {
		switch o.kind {
		case "emit":
			r.Emit(o.t, o.level, o.cpu, o.pid, o.text)
		case "cont":
			r.Cont(o.t, o.cpu, o.pid, o.text)
		case "flush":
			r.Flush()
		default:
			panic("bad op " + o.kind)
		}
	}
}

// rec builds an expected record; Seq is filled in from its position.
func rec(t int64, level printk.Level, cpu, pid int, text string) printk.Record {
	return printk.Record{TimeNs: t, Level: level, CPU: cpu, PID: pid, Text: text}
}

func withSeqs(recs []printk.Record) []printk.Record {
	out := slices.Clone(recs)
	for i := range out {
		out[i].Seq = uint64(i)
	}
	return out
}

const (
	info = printk.LevelInfo
	warn = printk.LevelWarning
	errl = printk.LevelErr
)

var lineAssemblyCases = []struct {
	name string
	ops  []op
	want []printk.Record
}{
	{
		name: "one line",
		ops:  []op{emit(1, info, 0, 10, "hello\n")},
		want: []printk.Record{rec(1, info, 0, 10, "hello")},
	},
	{
		name: "several lines in one call become several records",
		ops:  []op{emit(1, warn, 2, 10, "a\nb\n")},
		want: []printk.Record{rec(1, warn, 2, 10, "a"), rec(1, warn, 2, 10, "b")},
	},
	{
		name: "empty line is an empty record",
		ops:  []op{emit(1, info, 0, 10, "\n"), emit(2, info, 0, 10, "\n\n")},
		want: []printk.Record{rec(1, info, 0, 10, ""), rec(2, info, 0, 10, ""), rec(2, info, 0, 10, "")},
	},
	{
		name: "open line is invisible",
		ops:  []op{emit(1, info, 0, 10, "pending")},
		want: nil,
	},
	{
		name: "flush commits open line",
		ops:  []op{emit(1, info, 0, 10, "a\nb"), flush()},
		want: []printk.Record{rec(1, info, 0, 10, "a"), rec(1, info, 0, 10, "b")},
	},
	{
		name: "flush with nothing open does nothing",
		ops:  []op{emit(1, info, 0, 10, "a\n"), flush(), flush()},
		want: []printk.Record{rec(1, info, 0, 10, "a")},
	},
	{
		name: "continuation joins open line and keeps first piece's time and level",
		ops: []op{
			emit(1, warn, 1, 10, "delta: 2071234 ns"),
			cont(2, 1, 10, " (~ 2071 us"),
			cont(3, 1, 10, " ~ 2 ms"),
			cont(4, 1, 10, ")\n"),
		},
		want: []printk.Record{rec(1, warn, 1, 10, "delta: 2071234 ns (~ 2071 us ~ 2 ms)")},
	},
	{
		name: "continuation with several lines keeps open line's level and time",
		ops:  []op{emit(1, errl, 0, 10, "a"), cont(2, 0, 10, "b\nc\nd"), cont(3, 0, 10, "e\n")},
		want: []printk.Record{rec(1, errl, 0, 10, "ab"), rec(1, errl, 0, 10, "c"), rec(1, errl, 0, 10, "de")},
	},
	{
		name: "empty continuation changes nothing",
		ops:  []op{emit(1, info, 0, 10, "a"), cont(2, 0, 10, ""), cont(3, 0, 10, "\n")},
		want: []printk.Record{rec(1, info, 0, 10, "a")},
	},
	{
		name: "same caller's non-continuation commits open line first",
		ops:  []op{emit(1, info, 0, 10, "a"), emit(2, warn, 0, 10, "b\n")},
		want: []printk.Record{rec(1, info, 0, 10, "a"), rec(2, warn, 0, 10, "b")},
	},
	{
		name: "other caller's emit commits open line; later cont starts a new info line",
		ops:  []op{emit(1, errl, 0, 10, "a"), emit(2, warn, 0, 11, "b\n"), cont(3, 0, 10, "c\n")},
		want: []printk.Record{rec(1, errl, 0, 10, "a"), rec(2, warn, 0, 11, "b"), rec(3, info, 0, 10, "c")},
	},
	{
		name: "other caller's cont commits open line",
		ops:  []op{emit(1, errl, 0, 10, "a"), cont(2, 0, 11, "b\n")},
		want: []printk.Record{rec(1, errl, 0, 10, "a"), rec(2, info, 0, 11, "b")},
	},
	{
		name: "same pid on another cpu is another caller",
		ops:  []op{emit(1, errl, 0, 10, "a"), cont(2, 1, 10, "b\n")},
		want: []printk.Record{rec(1, errl, 0, 10, "a"), rec(2, info, 1, 10, "b")},
	},
	{
		name: "cont without open line is info",
		ops:  []op{cont(1, 0, 10, "x\n")},
		want: []printk.Record{rec(1, info, 0, 10, "x")},
	},
	{
		name: "cont without open line may stay open",
		ops:  []op{cont(1, 0, 10, "x"), cont(2, 0, 10, "y\n")},
		want: []printk.Record{rec(1, info, 0, 10, "xy")},
	},
	{
		name: "empty emit opens an empty line that cont fills",
		ops:  []op{emit(1, warn, 0, 10, ""), cont(2, 0, 10, "x\n")},
		want: []printk.Record{rec(1, warn, 0, 10, "x")},
	},
	{
		name: "level out of range is stored as info",
		ops:  []op{emit(1, printk.Level(9), 0, 10, "x\n"), emit(2, printk.Level(-1), 0, 10, "y\n")},
		want: []printk.Record{rec(1, info, 0, 10, "x"), rec(2, info, 0, 10, "y")},
	},
}

func TestLineAssembly(t *testing.T) {
	for _, tc := range lineAssemblyCases {
		t.Run(tc.name, func(t *testing.T) {
			r := printk.NewRing(64)
			apply(r, tc.ops)
			got, next := r.Records(0)
			want := withSeqs(tc.want)
			if !slices.Equal(got, want) {
				t.Errorf("records:\n got %+v\nwant %+v", got, want)
			}
			if next != uint64(len(want)) || r.NextSeq() != uint64(len(want)) {
				t.Errorf("next = %d, NextSeq = %d, want %d", next, r.NextSeq(), len(want))
			}
		})
	}
}

func TestContinuationJoinsOpenLine(t *testing.T) {
	r := printk.NewRing(8)
	r.Emit(100, printk.LevelInfo, 3, 42, "delta: 52361 ns")
	r.Cont(200, 3, 42, " (~ 52 us")
	if got, _ := r.Records(0); len(got) != 0 {
		t.Fatalf("open line visible before it ended: %+v", got)
	}
	r.Cont(300, 3, 42, ")\n")
	got, _ := r.Records(0)
	want := []printk.Record{{Seq: 0, TimeNs: 100, Level: printk.LevelInfo, CPU: 3, PID: 42, Text: "delta: 52361 ns (~ 52 us)"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestOverwrittenRecordsAreSkipped(t *testing.T) {
	r := printk.NewRing(4)
	for i := range 10 {
		r.Emit(int64(i), printk.LevelInfo, 0, 1, fmt.Sprintf("line %d\n", i))
	}
	cases := []struct {
		from     uint64
		wantSeqs []uint64
		wantNext uint64
	}{
		{0, []uint64{6, 7, 8, 9}, 10},
		{5, []uint64{6, 7, 8, 9}, 10},
		{6, []uint64{6, 7, 8, 9}, 10},
		{8, []uint64{8, 9}, 10},
		{10, nil, 10},
		{20, nil, 20},
	}
	for _, tc := range cases {
		recs, next := r.Records(tc.from)
		var seqs []uint64
		for _, rec := range recs {
			seqs = append(seqs, rec.Seq)
			if want := fmt.Sprintf("line %d", rec.Seq); rec.Text != want || rec.TimeNs != int64(rec.Seq) {
				t.Errorf("record %d = %+v, want text %q", rec.Seq, rec, want)
			}
		}
		if !slices.Equal(seqs, tc.wantSeqs) || next != tc.wantNext {
			t.Errorf("Records(%d) = seqs %v next %d, want %v next %d", tc.from, seqs, next, tc.wantSeqs, tc.wantNext)
		}
	}
}

func TestRingBeforeWrapKeepsEverything(t *testing.T) {
	r := printk.NewRing(100)
	for i := range 99 {
		r.Emit(0, printk.LevelInfo, 0, 1, fmt.Sprintln(i))
	}
	recs, next := r.Records(0)
	if len(recs) != 99 || next != 99 || recs[0].Text != "0" || recs[98].Text != "98" {
		t.Fatalf("got %d records, next %d", len(recs), next)
	}
}

func TestNewRingNonPositiveCapacityMeansDefault(t *testing.T) {
	for _, c := range []int{0, -1} {
		r := printk.NewRing(c)
		for range printk.DefaultCapacity + 1 {
			r.Emit(0, printk.LevelInfo, 0, 1, "x\n")
		}
		recs, next := r.Records(0)
		if len(recs) != printk.DefaultCapacity || recs[0].Seq != 1 || next != printk.DefaultCapacity+1 {
			t.Errorf("NewRing(%d): %d records from seq %d, next %d", c, len(recs), recs[0].Seq, next)
		}
	}
}

func TestRecordsReturnsACopy(t *testing.T) {
	r := printk.NewRing(4)
	r.Emit(0, printk.LevelInfo, 0, 1, "a\n")
	recs, _ := r.Records(0)
	recs[0].Text = "changed"
	again, _ := r.Records(0)
	if again[0].Text != "a" {
		t.Fatalf("Records exposed the ring's storage: %q", again[0].Text)
	}
}

// follow runs r.Follow on its own goroutine. Every record is sent on recs;
// the Follow result arrives on done.
func follow(ctx context.Context, r *printk.Ring, from uint64) (recs <-chan printk.Record, done <-chan error) {
	rc := make(chan printk.Record)
	dc := make(chan error, 1)
	go func() {
		dc <- r.Follow(ctx, from, func(rec printk.Record) error {
			select {
			case rc <- rec:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
	}()
	return rc, dc
}

func TestFollowDeliversNewRecordsUntilCancelled(t *testing.T) {
	r := printk.NewRing(16)
	r.Emit(1, printk.LevelInfo, 0, 1, "old 0\nold 1\n")
	errStop := errors.New("stop following")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	recs, done := follow(ctx, r, 0)

	for i, want := range []string{"old 0", "old 1"} {
		if got := <-recs; got.Text != want || got.Seq != uint64(i) {
			t.Fatalf("record %d = %+v, want %q", i, got, want)
		}
	}
	// Whether or not Follow is already waiting, new commits must reach it.
	r.Emit(2, printk.LevelInfo, 0, 1, "new 2\n")
	r.Emit(3, printk.LevelInfo, 0, 1, "new 3")
	r.Flush()
	for i, want := range []string{"new 2", "new 3"} {
		if got := <-recs; got.Text != want || got.Seq != uint64(i+2) {
			t.Fatalf("record %d = %+v, want %q", i+2, got, want)
		}
	}
	cancel(errStop)
	if err := <-done; !errors.Is(err, errStop) {
		t.Fatalf("Follow returned %v, want the cancel cause %v", err, errStop)
	}
}

func TestFollowWaitsForCommitNotForOpenLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := printk.NewRing(16)
		ctx, cancel := context.WithCancel(t.Context())
		var got []string // written by Follow's fn, read after synctest.Wait
		done := make(chan error, 1)
		go func() {
			done <- r.Follow(ctx, 0, func(rec printk.Record) error {
				got = append(got, rec.Text)
				return nil
			})
		}()
		synctest.Wait() // Follow is durably blocked waiting for a commit
		if len(got) != 0 {
			t.Fatalf("got %q from an empty ring", got)
		}
		r.Emit(1, printk.LevelInfo, 0, 1, "open")
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("open line delivered: %q", got)
		}
		r.Cont(2, 0, 1, " line\n")
		synctest.Wait()
		if !slices.Equal(got, []string{"open line"}) {
			t.Fatalf("got %q, want [open line]", got)
		}
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Follow returned %v, want context.Canceled", err)
			}
		default:
			t.Fatal("Follow did not return after cancel")
		}
	})
}

func TestFollowReturnsCallbackError(t *testing.T) {
	r := printk.NewRing(16)
	r.Emit(0, printk.LevelInfo, 0, 1, "a\nb\nc\n")
	errEnough := errors.New("enough")
	var seen []string
	err := r.Follow(context.Background(), 0, func(rec printk.Record) error {
		seen = append(seen, rec.Text)
		if rec.Text == "b" {
			return errEnough
		}
		return nil
	})
	if err != errEnough || !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("Follow = %v after %q, want %v after [a b]", err, seen, errEnough)
	}
}

func TestFollowOnCancelledContextReturnsCause(t *testing.T) {
	r := printk.NewRing(16)
	r.Emit(0, printk.LevelInfo, 0, 1, "a\n")
	errCause := errors.New("cause")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errCause)
	called := false
	err := r.Follow(ctx, 0, func(printk.Record) error { called = true; return nil })
	if err != errCause || called {
		t.Fatalf("Follow = %v (fn called: %v), want %v without calls", err, called, errCause)
	}
}

func TestFollowSkipsOverwrittenRecords(t *testing.T) {
	r := printk.NewRing(4)
	for i := range 10 {
		r.Emit(0, printk.LevelInfo, 0, 1, fmt.Sprintf("%d\n", i))
	}
	errDone := errors.New("done")
	var seqs []uint64
	err := r.Follow(context.Background(), 2, func(rec printk.Record) error {
		seqs = append(seqs, rec.Seq)
		if rec.Seq == 9 {
			return errDone
		}
		return nil
	})
	if err != errDone || !slices.Equal(seqs, []uint64{6, 7, 8, 9}) {
		t.Fatalf("Follow = %v with seqs %v, want %v with [6 7 8 9]", err, seqs, errDone)
	}
}

func TestFollowCallbackMayWriteToTheRing(t *testing.T) {
	r := printk.NewRing(16)
	r.Emit(0, printk.LevelInfo, 0, 1, "ping\n")
	errDone := errors.New("done")
	var seen []string
	err := r.Follow(context.Background(), 0, func(rec printk.Record) error {
		seen = append(seen, rec.Text)
		if len(seen) == 3 {
			return errDone
		}
		r.Emit(0, printk.LevelInfo, 0, 2, "echo "+rec.Text+"\n")
		return nil
	})
	if err != errDone || !slices.Equal(seen, []string{"ping", "echo ping", "echo echo ping"}) {
		t.Fatalf("Follow = %v, seen %q", err, seen)
	}
}

func TestSinkReceivesEveryCommitInOrderBeforeEmitReturns(t *testing.T) {
	r := printk.NewRing(16)
	r.Emit(0, printk.LevelInfo, 0, 1, "before the sink\n")
	var got []printk.Record
	remove := r.AddSink(func(rec printk.Record) { got = append(got, rec) })
	defer remove()

	r.Emit(1, printk.LevelInfo, 0, 1, "a\nb")
	if len(got) != 1 || got[0].Text != "a" {
		t.Fatalf("after Emit: %+v, want just a", got)
	}
	r.Cont(2, 0, 1, "c\n")
	r.Emit(3, printk.LevelWarning, 1, 2, "d")
	r.Flush()
	all, _ := r.Records(0)
	if !slices.Equal(got, all[1:]) {
		t.Fatalf("sink got %+v\nring has %+v", got, all[1:])
	}
}

func TestRemovedSinkIsNotCalled(t *testing.T) {
	r := printk.NewRing(16)
	var a, b []string
	removeA := r.AddSink(func(rec printk.Record) { a = append(a, rec.Text) })
	removeB := r.AddSink(func(rec printk.Record) { b = append(b, rec.Text) })
	r.Emit(0, printk.LevelInfo, 0, 1, "1\n")
	removeA()
	removeA() // idempotent
	r.Emit(0, printk.LevelInfo, 0, 1, "2\n")
	removeB()
	r.Emit(0, printk.LevelInfo, 0, 1, "3\n")
	if !slices.Equal(a, []string{"1"}) || !slices.Equal(b, []string{"1", "2"}) {
		t.Fatalf("a = %q, b = %q", a, b)
	}
}

func TestSinkMayRemoveItselfAndReadTheRing(t *testing.T) {
	r := printk.NewRing(16)
	var got []string
	var remove func()
	remove = r.AddSink(func(rec printk.Record) {
		recs, _ := r.Records(rec.Seq) // reading from a sink must not deadlock
		got = append(got, recs[0].Text)
		remove()
	})
	r.Emit(0, printk.LevelInfo, 0, 1, "x\ny\n")
	r.Emit(0, printk.LevelInfo, 0, 1, "z\n")
	if !slices.Equal(got, []string{"x"}) {
		t.Fatalf("got %q, want [x]", got)
	}
}

func TestAddSinkNilPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("AddSink(nil) did not panic")
		}
	}()
	printk.NewRing(1).AddSink(nil)
}

// TestConcurrentWritersFollowerSeesNoGapsOrDuplicates runs several writers
// (some splitting lines into Emit + Cont) against a follower, a sink and a
// snapshot reader. Sequence numbers must be dense and in order for every
// reader, and each caller's text must arrive complete and in order. The
// ring is big enough that nothing is overwritten.
func TestConcurrentWritersFollowerSeesNoGapsOrDuplicates(t *testing.T) {
	const (
		writers = 8
		lines   = 400
	)
	r := printk.NewRing(writers*lines*2 + 16)

	var sinkErr error
	var sinkSeq uint64
	removeSink := r.AddSink(func(rec printk.Record) { // calls are serialized
		if rec.Seq != sinkSeq && sinkErr == nil {
			sinkErr = fmt.Errorf("sink got seq %d, want %d", rec.Seq, sinkSeq)
		}
		sinkSeq = rec.Seq + 1
	})
	defer removeSink()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errEnd := errors.New("end marker")
	perPID := map[int]*strings.Builder{}
	followDone := make(chan error, 1)
	go func() {
		var want uint64
		followDone <- r.Follow(ctx, 0, func(rec printk.Record) error {
			if rec.Seq != want {
				return fmt.Errorf("follower got seq %d, want %d", rec.Seq, want)
			}
			want++
			if rec.Text == "END" {
				return errEnd
			}
			b := perPID[rec.PID]
			if b == nil {
				b = new(strings.Builder)
				perPID[rec.PID] = b
			}
			b.WriteString(rec.Text)
			return nil
		})
	}()

	var readerErr error
	readerDone := make(chan struct{})
	go func() { // snapshot reader
		defer close(readerDone)
		for ctx.Err() == nil {
			recs, next := r.Records(0)
			for i, rec := range recs {
				if rec.Seq != uint64(i) {
					readerErr = fmt.Errorf("snapshot has seq %d at index %d", rec.Seq, i)
					return
				}
			}
			if next != uint64(len(recs)) {
				readerErr = fmt.Errorf("snapshot of %d records has next %d", len(recs), next)
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			pid, cpu := 100+w, w%4
			for i := range lines {
				ts := int64(i)
				if i%3 == 0 {
					r.Emit(ts, printk.LevelInfo, cpu, pid, fmt.Sprintf("p%d:%d\n", pid, i))
				} else {
					r.Emit(ts, printk.LevelInfo, cpu, pid, fmt.Sprintf("p%d:%d:", pid, i))
					r.Cont(ts, cpu, pid, "x\n")
				}
			}
		})
	}
	wg.Wait()
	r.Emit(0, printk.LevelInfo, 0, 1, "END\n")

	if err := <-followDone; err != errEnd {
		t.Fatal(err)
	}
	cancel()
	<-readerDone
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	if sinkErr != nil {
		t.Fatal(sinkErr)
	}
	if want := r.NextSeq(); sinkSeq != want {
		t.Fatalf("sink saw %d records, ring committed %d", sinkSeq, want)
	}
	for w := range writers {
		pid := 100 + w
		var want strings.Builder
		for i := range lines {
			if i%3 == 0 {
				fmt.Fprintf(&want, "p%d:%d", pid, i)
			} else {
				fmt.Fprintf(&want, "p%d:%d:x", pid, i)
			}
		}
		if got := perPID[pid]; got == nil || got.String() != want.String() {
			t.Errorf("pid %d: text out of order or incomplete", pid)
		}
	}
}
