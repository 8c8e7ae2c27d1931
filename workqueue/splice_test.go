package workqueue

import (
	"fmt"
	"testing"

	"github.com/kdefer/kdefer/trace"
)

// spliceWorld is a pool with two workqueues' pwqs on it, built without a
// kernel: enough for splice and enqueue, which only touch lists and
// counters under the pool lock.
type spliceWorld struct {
	pool  *workerPool
	pwqs  [2]*pwq
	items []Work
}

func newSpliceWorld(t testing.TB, maxActive [2]int, nItems int) *spliceWorld {
	tr, err := trace.New(trace.Options{CPUs: 1, Clock: func() int64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	w := &spliceWorld{pool: &workerPool{tr: tr}, items: make([]Work, nItems)}
	for i := range w.pwqs {
		wq := &Workqueue{name: fmt.Sprint("wq", i)}
		wq.maxActive.Store(int32(maxActive[i]))
		w.pwqs[i] = &pwq{pool: w.pool, wq: wq}
	}
	return w
}

// listNames lists the items of l by index, checking its links.
func (w *spliceWorld) listNames(t *testing.T, l *wlist) []int {
	t.Helper()
	var out []int
	var prev *Work
	for it := l.head; it != nil; it = it.next {
		if it.prev != prev || it.list != l {
			t.Fatalf("item %d: prev or list wrong", w.index(it))
		}
		out = append(out, w.index(it))
		prev = it
	}
	if l.tail != prev {
		t.Fatal("tail is not the last item")
	}
	return out
}

func (w *spliceWorld) index(it *Work) int {
	for i := range w.items {
		if &w.items[i] == it {
			return i
		}
	}
	return -1
}

// state is everything splice or enqueue may change, in comparable form.
func (w *spliceWorld) state(t *testing.T) string {
	s := fmt.Sprintf("worklist %v\n", w.listNames(t, &w.pool.worklist))
	for i, p := range w.pwqs {
		s += fmt.Sprintf("pwq%d inactive %v inFlight %v active %d queued %d\n", i, w.listNames(t, &p.inactive), p.nrInFlight, p.nrActive, p.stats.queued)
	}
	for i := range w.items {
		it := &w.items[i]
		s += fmt.Sprintf("item %d pwq %p qflags %#x\n", i, it.pwq, it.qflags)
	}
	return s
}

// FuzzSpliceMatchesEnqueueOneByOne: splicing a chain pushed without the
// lock leaves the pool's lists, the pwqs' counters and every item's flags
// as enqueue would have left them, called for each item in queueing
// order — whatever the items' pwqs, the pwqs' max_active and flush color,
// and the items already active or waiting.
func FuzzSpliceMatchesEnqueueOneByOne(f *testing.F) {
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 5, 1, 2, 0, 0, 0, 1, 0})
	f.Add([]byte{1, 1, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{200, 7, 3, 0, 9, 1, 0, 0, 0, 1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		maxActive := [2]int{int(data[0]%8) + 1, int(data[1]%8) + 1}
		color := int(data[2] % NrColors)
		before := int(data[3] % 8) // items enqueued (with the lock) first
		ops := data[4:]
		if len(ops) > 64 {
			ops = ops[:64]
		}
		n := before + len(ops)
		worlds := [2]*spliceWorld{newSpliceWorld(t, maxActive, n), newSpliceWorld(t, maxActive, n)}
		for _, w := range worlds {
			for _, p := range w.pwqs {
				p.workColor = color
			}
			for i := range before {
				w.pool.enqueue(nil, w.pwqs[i%2], &w.items[i])
			}
		}
		// World 0 pushes the rest on the incoming chain and splices them;
		// world 1 enqueues each in order.
		w0, w1 := worlds[0], worlds[1]
		for i, op := range ops {
			it := &w0.items[before+i]
			it.pwq = w0.pwqs[op&1]
			// Stale links of an item's earlier queueing: splice sets them.
			it.prev, it.list, it.qflags = &w0.items[0], &w0.pool.worklist, 0xff
			w0.pool.pushChain(it)
			w1.pool.enqueue(nil, w1.pwqs[op&1], &w1.items[before+i])
		}
		w0.pool.splice()
		if w0.pool.incoming.Load() != nil {
			t.Fatal("splice left items on the incoming chain")
		}
		got, want := w0.state(t), w1.state(t)
		// The pwq pointers differ between the worlds: compare their indexes.
		for _, w := range worlds {
			for i, p := range w.pwqs {
				got = replaceAll(got, fmt.Sprintf("%p", p), fmt.Sprint("pwq", i))
				want = replaceAll(want, fmt.Sprintf("%p", p), fmt.Sprint("pwq", i))
			}
		}
		if got != want {
			t.Fatalf("splice:\n%s\none by one:\n%s", got, want)
		}
	})
}

func replaceAll(s, old, new string) string {
	out := ""
	for {
		i := indexOf(s, old)
		if i < 0 {
			return out + s
		}
		out += s[:i] + new
		s = s[i+len(old):]
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
