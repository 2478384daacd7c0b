// Package procs sizes the Go scheduler to the node's load.
//
// A Go program runs with one P (GOMAXPROCS) per core by default. A media node spends most
// of its time waiting for the next packet, and every packet readies a chain of goroutines
// (Pion's receive path: socket reader, ICE, DTLS/SRTP, track reader). Each goroutine readied
// while a P is idle wakes another thread, which finds the work already taken and goes back
// to sleep: two context switches for nothing, several times per packet. On a 2-core VM
// forwarding one camera to 100 subscribers, those wake-ups were a quarter of the node's CPU.
//
// Adapt keeps as many Ps as the CPU the process actually uses needs (each P at most about
// busyHigh busy, on average), up to all of them as soon as the load asks for more.
package procs

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"sync/atomic"
	"time"
)

const (
	// busyHigh is the share of its Ps the process may use, on average, before it gets more:
	// with 1 P, a second one comes when the process uses more than 0.85 of a core. Most of
	// the time a media node's work is a fan-out of a packet to its subscribers, a millisecond
	// or so; a P that busy delays the next one by a few of those at worst.
	busyHigh = 0.85
	// saturated is the share of its Ps which, in two samples in a row, gets more Ps at once.
	saturated = 0.95
	// shrinkGain is how much less CPU the same work is expected to take on fewer Ps: idle Ps
	// are what wakes threads for nothing, so a node often uses a third more on two Ps than
	// it does on one (measured: 1.3–2×). The process tries fewer Ps once its average has
	// stayed below busyHigh × shrinkGain of the smaller size for lowerAfter samples in a row.
	shrinkGain = 1.3
	lowerAfter = 20
	// probeWatch is how long (in samples) after giving Ps back a raise means that the smaller
	// size was too small. Each such failed try doubles the stretch needed before the next
	// one, up to lowerAfter << maxBackoff samples (21 minutes); a size that holds for
	// probeWatch samples resets it.
	probeWatch = 40
	maxBackoff = 8
	// settleSamples is how many samples after a change of size the average is rebuilt
	// before it is trusted again (saturation still counts at once).
	settleSamples = 4
	// smoothing is the time constant of the average CPU use.
	smoothing = 2 * time.Second
)

// DefaultInterval is how often Adapt samples the process's CPU time unless told otherwise.
const DefaultInterval = 250 * time.Millisecond

// Options tune Adapt.
type Options struct {
	Max      int           // most Ps; 0: GOMAXPROCS when Adapt starts (a core each, or the container's CPU limit)
	Interval time.Duration // between samples; 0: DefaultInterval
	Log      *slog.Logger  // size changes at debug level; nil: none
}

// adapting is set while an Adapt runs: GOMAXPROCS is the process's, so only one may.
var adapting atomic.Bool

// Adapt sets GOMAXPROCS from the process's CPU use until ctx is done, then restores the
// value it started with. Where the process's CPU time cannot be read, or while another Adapt
// runs in the process, it returns at once and changes nothing.
func Adapt(ctx context.Context, o Options) {
	if !adapting.CompareAndSwap(false, true) {
		return
	}
	defer adapting.Store(false)
	start := runtime.GOMAXPROCS(0)
	if o.Max <= 0 {
		o.Max = start
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	prevCPU, ok := processCPU()
	if !ok {
		return
	}
	defer runtime.GOMAXPROCS(start)
	prevAt := time.Now()
	size := newSizer(min(start, o.Max), o.Max, o.Interval)
	runtime.GOMAXPROCS(size.procs)
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cpu, _ := processCPU()
			used := (cpu - prevCPU).Seconds() / now.Sub(prevAt).Seconds()
			prevCPU, prevAt = cpu, now
			if next := size.next(used); next != runtime.GOMAXPROCS(0) {
				runtime.GOMAXPROCS(next)
				if o.Log != nil {
					o.Log.Debug("scheduler resized", "procs", next, "cores_used", math.Round(used*100)/100)
				}
			}
		}
	}
}

// sizer decides the number of Ps from successive samples of the cores in use.
type sizer struct {
	procs, max int
	avg        float64 // cores used, averaged exponentially over about smoothing
	alpha      float64 // the weight of a new sample in avg
	primed     bool    // avg holds at least one sample
	hot        int     // samples in a row above saturated
	low        int     // samples in a row whose average asked for fewer Ps
	settle     int     // samples left before the average is trusted after a change of size
	sinceLower int     // samples since Ps were last given back; -1: not watching
	backoff    int     // failed tries at fewer Ps in a row
}

func newSizer(procs, most int, interval time.Duration) *sizer {
	return &sizer{procs: procs, max: most, sinceLower: -1,
		alpha: 1 - math.Exp(-interval.Seconds()/smoothing.Seconds())}
}

// next takes one sample (the cores used since the last one) and returns the Ps to run with.
func (s *sizer) next(used float64) int {
	if !s.primed {
		s.avg, s.primed = used, true
	} else {
		s.avg += s.alpha * (used - s.avg)
	}
	procs := float64(s.procs)
	if used > saturated*procs {
		s.hot++
	} else {
		s.hot = 0
	}
	if s.sinceLower >= 0 {
		s.sinceLower++
	}
	averaged := s.settle == 0
	if s.settle > 0 {
		s.settle--
	}
	switch {
	case s.procs < s.max && (s.hot >= 2 || averaged && s.avg > busyHigh*procs):
		if s.sinceLower >= 0 && s.sinceLower < probeWatch {
			s.backoff = min(s.backoff+1, maxBackoff) // the smaller size was too small
		}
		want := int(math.Ceil(max(used, s.avg) / busyHigh))
		s.procs, s.low, s.hot, s.sinceLower = min(max(want, s.procs+1), s.max), 0, 0, -1
		s.primed, s.settle = false, settleSamples // the same work costs differently on another size
	case s.procs > 1 && averaged && s.avg < busyHigh*shrinkGain*(procs-1):
		s.low++
		if s.low >= lowerAfter<<s.backoff {
			// As many as the average needs without counting on the gain, but one fewer at least.
			want := int(math.Ceil(s.avg / busyHigh))
			s.procs, s.low, s.sinceLower = max(min(want, s.procs-1), 1), 0, 0
			s.primed, s.settle = false, settleSamples
		}
	default:
		s.low = 0
	}
	if s.sinceLower >= probeWatch { // the smaller size held
		s.backoff, s.sinceLower = 0, -1
	}
	return s.procs
}
