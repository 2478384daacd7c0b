package procs

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSizerRaisesWhenBusyAndLowersOnlyAfterASustainedLowLoad(t *testing.T) {
	s := newSizer(4, 4, DefaultInterval)
	// A light load: 0.3 cores. Four Ps stay until lowerAfter samples in a row asked for fewer.
	for i := 1; i < lowerAfter; i++ {
		if got := s.next(0.3); got != 4 {
			t.Fatalf("sample %d of a light load: %d procs, want still 4", i, got)
		}
	}
	if got := s.next(0.3); got != 1 {
		t.Fatalf("after %d light samples: %d procs, want 1 (0.3 cores fit one P at ≤ %.0f%%)", lowerAfter, got, busyHigh*100)
	}
	// A single busier sample that does not saturate the P is absorbed by the average...
	for range 2 * settleSamples {
		s.next(0.3)
	}
	for range 4 {
		if got := s.next(0.92); got != 1 {
			t.Fatalf("a second of 0.92 cores with 1 P: %d procs, want still 1", got)
		}
	}
	if got := s.next(1.0); got != 1 {
		t.Fatalf("one saturated sample: %d procs, want still 1", got)
	}
	// ...a load that stays above busyHigh gets a second P within a few seconds...
	n := 0
	for s.next(0.92) == 1 {
		if n++; n > int(3*smoothing/DefaultInterval) {
			t.Fatalf("0.92 cores with 1 P for %d samples: still 1 P", n)
		}
	}
	if s.procs != 2 {
		t.Fatalf("0.92 cores for a while: %d procs, want 2", s.procs)
	}
	// ...and two saturated samples in a row get as many as they need at once, never more
	// than max.
	if got := s.next(3); got != 2 {
		t.Fatalf("one sample of 3 cores with 2 Ps: %d procs, want still 2", got)
	}
	if got := s.next(3); got != 4 {
		t.Fatalf("two samples of 3 cores with 2 Ps: %d procs, want 4", got)
	}
	if got := s.next(9); got != 4 {
		t.Fatalf("9 cores used: %d procs, want the max 4", got)
	}
}

func TestSizerNeedsTheWholeLowStretch(t *testing.T) {
	s := newSizer(2, 4, DefaultInterval)
	for i := 0; i < lowerAfter/2; i++ {
		s.next(0.1)
	}
	for range 10 { // 2.5 seconds at 1.7 cores lift the average above one P's share
		if got := s.next(1.7); got != 2 {
			t.Fatalf("1.7 cores with 2 Ps: %d procs, want 2", got)
		}
	}
	i := 0
	for s.next(0.1) == 2 {
		i++
	}
	if i < lowerAfter-1 {
		t.Fatalf("lowered %d samples after a busy second, want at least %d", i, lowerAfter-1)
	}
}

func TestSizerDoesNotFlapUnderASteadyLoad(t *testing.T) {
	// Between busyHigh × shrinkGain × (procs−1) and busyHigh × procs the size holds, whatever
	// the history.
	for _, c := range []struct {
		procs int
		used  float64
	}{
		{2, busyHigh*shrinkGain + 0.01}, {2, 2*busyHigh - 0.01},
		{3, 2*busyHigh*shrinkGain + 0.01}, {3, 3*busyHigh - 0.01},
		{1, busyHigh - 0.01},
	} {
		s := newSizer(c.procs, 8, DefaultInterval)
		for i := 0; i < 10*lowerAfter; i++ {
			if got := s.next(c.used); got != c.procs {
				t.Fatalf("%v cores used with %d procs: changed to %d at sample %d", c.used, c.procs, got, i)
			}
		}
	}
	s := newSizer(1, 8, DefaultInterval)
	for i := 0; i < 10*lowerAfter; i++ {
		if got := s.next(0); got != 1 {
			t.Fatalf("idle: %d procs, want 1 (never 0)", got)
		}
	}
}

// simulate runs a sizer for n samples against a process whose CPU use depends on its size
// (usage(procs)), and returns how often the size changed and the size at the end.
func simulate(s *sizer, n int, usage func(procs int) float64) (changes []int, procs int) {
	procs = s.procs
	for i := range n {
		if next := s.next(usage(procs)); next != procs {
			changes = append(changes, i)
			procs = next
		}
	}
	return changes, procs
}

// A node whose idle Ps cost a third more CPU settles on the size its work needs: it gives Ps
// back even when the larger size looks busy, and does not ask for them again.
func TestSizerSettlesWhereFewerPsCostLess(t *testing.T) {
	for _, c := range []struct {
		work float64 // cores the work takes on one P
		want int
	}{{0.1, 1}, {0.45, 1}, {0.8, 1}, {1.2, 2}, {2.5, 4}} {
		usage := func(procs int) float64 {
			if procs == 1 {
				return c.work
			}
			return c.work * 1.33 // the idle-P overhead, about what a 2-core node measured
		}
		s := newSizer(8, 8, DefaultInterval)
		changes, procs := simulate(s, 20_000, usage)
		if procs != c.want {
			t.Errorf("work of %.2f cores: settled on %d procs, want %d (changes at samples %v)", c.work, procs, c.want, changes)
		}
		if n := len(changes); n > 0 && changes[n-1] > 2_000 {
			t.Errorf("work of %.2f cores: still changing size at sample %d of 20 000: %v", c.work, changes[n-1], changes)
		}
	}
}

// Where fewer Ps do not cost less, trying them fails; the tries back off, so a steady load
// changes size rarely: at most about once per lowerAfter << maxBackoff samples in the end.
func TestSizerBacksOffFromFailedTries(t *testing.T) {
	s := newSizer(2, 2, DefaultInterval)
	const hours = 2
	n := hours * int(time.Hour/DefaultInterval)
	changes, _ := simulate(s, n, func(int) float64 { return 1.0 }) // a full core whatever the size
	if len(changes) == 0 {
		t.Fatal("at 1.0 cores on 2 Ps the sizer never tried 1 P")
	}
	var tries []int // samples at which 1 P was tried
	for i := 0; i < len(changes); i += 2 {
		tries = append(tries, changes[i])
	}
	for i := 2; i < len(tries); i++ {
		if gap, prev := tries[i]-tries[i-1], tries[i-1]-tries[i-2]; gap < prev && gap < lowerAfter<<maxBackoff {
			t.Fatalf("tries at samples %v: the gaps shrink before reaching the longest back-off", tries)
		}
	}
	lastHour := 0
	for _, at := range tries {
		if at >= n-int(time.Hour/DefaultInterval) {
			lastHour++
		}
	}
	if most := int(time.Hour/DefaultInterval)/(lowerAfter<<maxBackoff) + 1; lastHour > most {
		t.Fatalf("%d tries of 1 P in the last hour, want at most %d (tries at %v)", lastHour, most, tries)
	}
	// And each failed try is short: back up at the second saturated sample.
	for i := 0; i+1 < len(changes); i += 2 {
		if d := changes[i+1] - changes[i]; d > 2 {
			t.Fatalf("1 P tried at sample %d lasted %d samples at a saturating load", changes[i], d)
		}
	}
}

// TestAdaptFollowsTheProcesssRealCPUUse runs Adapt on this process: idle, it comes down to one
// P; with two goroutines spinning, it goes up to two within a few samples, and back to one when
// they stop; stopped, it restores GOMAXPROCS.
func TestAdaptFollowsTheProcesssRealCPUUse(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)
	runtime.GOMAXPROCS(2)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	const interval = 20 * time.Millisecond
	go func() {
		defer close(done)
		Adapt(ctx, Options{Max: 2, Interval: interval})
	}()
	reaches := func(want int, within time.Duration) bool {
		deadline := time.Now().Add(within)
		for runtime.GOMAXPROCS(0) != want {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(interval / 2)
		}
		return true
	}
	waitFor := func(want int, within time.Duration) {
		t.Helper()
		if !reaches(want, within) {
			t.Fatalf("GOMAXPROCS still %d after %v, want %d", runtime.GOMAXPROCS(0), within, want)
		}
	}
	waitFor(1, 100*lowerAfter*interval) // idle: lowerAfter samples, with room for a loaded machine

	var stop atomic.Bool
	var spinners sync.WaitGroup
	for range 2 {
		spinners.Go(func() {
			for !stop.Load() {
				for i := 0; i < 1e5; i++ {
				}
			}
		})
	}
	cpu0, _ := processCPU()
	start := time.Now()
	raised := reaches(2, 10*time.Second)
	cpu1, _ := processCPU()
	stop.Store(true)
	spinners.Wait()
	if !raised {
		// Only a process that gets the CPU can ask for more of it: on a machine busy with
		// other work, one P may be all this process can use.
		used := (cpu1 - cpu0).Seconds() / time.Since(start).Seconds()
		if used >= busyHigh {
			t.Fatalf("the process used %.2f cores with 1 P for %v and still has 1 P", used, time.Since(start).Round(time.Millisecond))
		}
		t.Logf("the machine gave this process only %.2f of a core while it spun: not enough to ask for a second P", used)
	} else {
		waitFor(1, 100*lowerAfter*interval) // idle again
	}

	cancel()
	<-done
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Fatalf("after Adapt returned: GOMAXPROCS %d, want the 2 it started with", got)
	}
}
