package trace

// Probe is a function attached to an event (AttachProbe): the kernel's
// tracepoint probes (register_trace_<event>), which perf and BPF attach
// beside ftrace's ring. It is called synchronously where the event fires,
// with the record as the ring would hold it (stamped, with its sequence
// number), whether or not the event is enabled in the rings. It runs in
// the context that fired the event, possibly with kernel locks held and
// interrupts off: it must be quick, must not block, must not call back
// into the kernel, and must be safe for concurrent calls from every CPU.
// r is valid only during the call.
type Probe func(r *Record)

type probeEntry struct {
	id uint64
	fn Probe
}

// probeTable is the probes of every event, replaced whole on each change
// (copy on write), so that Emit reads it with one load.
type probeTable [NumEvents][]probeEntry

// AttachProbe attaches fn to event e and returns the function that
// detaches it (detaching twice does nothing). While a probe is attached
// the event's tracepoint is on (Tracer.On reports true), so its call
// sites record; the rings are not allocated for probes alone, and
// Enabled lists only ring events. Attaching to an unknown event does
// nothing.
func (t *Tracer) AttachProbe(e Event, fn Probe) (detach func()) {
	if e >= NumEvents || fn == nil {
		return func() {}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probeID++
	id := t.probeID
	var nt probeTable
	if old := t.probes.Load(); old != nil {
		nt = *old
	}
	nt[e] = append(nt[e][:len(nt[e]):len(nt[e])], probeEntry{id: id, fn: fn})
	t.storeProbes(&nt)
	return func() { t.detachProbe(e, id) }
}

func (t *Tracer) detachProbe(e Event, id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.probes.Load()
	if old == nil {
		return
	}
	nt := *old
	var kept []probeEntry
	for _, p := range old[e] {
		if p.id != id {
			kept = append(kept, p)
		}
	}
	nt[e] = kept
	t.storeProbes(&nt)
}

// storeProbes publishes nt and the masks it implies; call with mu held.
func (t *Tracer) storeProbes(nt *probeTable) {
	var probed uint64
	for e := range nt {
		if len(nt[e]) > 0 {
			probed |= 1 << e
		}
	}
	t.probes.Store(nt)
	t.probed.Store(probed)
	t.mask.Store(t.ring.Load() | probed)
}
