package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestSoakManyShortSessionsLeaveNothingBehind runs short sessions against the real binary, round
// after round, for ASSIST_SOAK_DURATION (default 1m; set e.g. 30m by hand), then checks that
// the node's goroutines, open file descriptors and heap come back to what they were after a
// warm-up round, and that the load tool itself leaks no goroutine.
//
// The node runs with GOGC=10, so its heap figure is close to its live heap at any moment
// without waiting for a collection.
func TestSoakManyShortSessionsLeaveNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: runs sessions for a minute or more")
	}
	soak := time.Minute
	if v := os.Getenv("ASSIST_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ASSIST_SOAK_DURATION: %v", err)
		}
		soak = d
	}
	t.Setenv("GOGC", "10") // inherited by the node
	url, pid := startNode(t)
	node := nodeProbe{url: url, pid: pid}
	round := func(ctx context.Context, sessions, subscribers int) *Report {
		t.Helper()
		rep, err := run(ctx, Config{URL: url, APIKey: testAPIKey, Sessions: sessions, Subscribers: subscribers, Duration: 500 * time.Millisecond})
		if err != nil {
			t.Fatalf("round: %v", err)
		}
		if rep.Joined != sessions*subscribers || len(rep.Failures) > 0 {
			t.Fatalf("round: %d of %d subscribers joined: %v", rep.Joined, sessions*subscribers, rep.Failures)
		}
		return rep
	}

	ctx, cancel := context.WithTimeout(context.Background(), soak+5*time.Minute)
	defer cancel()
	round(ctx, 2, 2) // warm-up: first sessions create streams, consumers, caches and pools
	base := node.settle(t, nil)
	http.DefaultClient.CloseIdleConnections()
	ownGoroutines := goleak.IgnoreCurrent()
	t.Logf("baseline after warm-up: %s", base)

	start := time.Now()
	var rounds, sessions, participants int
	peaks := make(chan sample2, 1)
	stopSampling := make(chan struct{})
	stop := sync.OnceFunc(func() { close(stopSampling) })
	defer stop()
	go func() { // the figures while calls are up, for the log
		var peak sample2
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if s, err := node.sample(); err == nil {
					peak = peak.max(s)
				}
			case <-stopSampling:
				peaks <- peak
				return
			}
		}
	}()
	for time.Since(start) < soak {
		round(ctx, 4, 2)
		rounds++
		sessions += 4
		participants += 4 * 3
	}
	stop()
	peak := <-peaks
	t.Logf("soak: %d rounds, %d sessions, %d participants in %s; peak %s", rounds, sessions, participants, time.Since(start).Round(time.Second), peak)

	// Back to the baseline: the same goroutines (give or take a few: NATS and the HTTP server
	// start and end some as they go), the same descriptors, and a heap that did not grow with
	// the sessions (JetStream keeps each session's record and events, a little memory each).
	end := node.settle(t, func(s sample2) bool {
		return s.goroutines <= base.goroutines+10 && s.fds <= base.fds+5 && s.heap <= base.heap+max(16<<20, base.heap/2)
	})
	t.Logf("after the soak: %s (baseline %s)", end, base)
	if end.goroutines > base.goroutines+10 {
		t.Errorf("goroutines: %d after, %d before", end.goroutines, base.goroutines)
	}
	if end.fds > base.fds+5 {
		t.Errorf("open file descriptors: %d after, %d before", end.fds, base.fds)
	}
	if end.heap > base.heap+max(16<<20, base.heap/2) {
		t.Errorf("heap: %d MiB after, %d MiB before", end.heap>>20, base.heap>>20)
	}
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, ownGoroutines)
}

// nodeProbe reads a node's figures from its /metrics and its /proc entry.
type nodeProbe struct {
	url string
	pid int
}

type sample2 struct {
	goroutines, fds int
	heap            int64 // bytes allocated on the heap, live and not yet collected
}

func (s sample2) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, %d MiB heap", s.goroutines, s.fds, s.heap>>20)
}

func (s sample2) max(o sample2) sample2 {
	return sample2{goroutines: max(s.goroutines, o.goroutines), fds: max(s.fds, o.fds), heap: max(s.heap, o.heap)}
}

func (p nodeProbe) sample() (sample2, error) {
	var s sample2
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
	if err != nil {
		return s, err
	}
	s.fds = len(entries)
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "go_goroutines":
			s.goroutines = int(v)
		case "go_memstats_heap_alloc_bytes":
			s.heap = int64(v)
		}
	}
	if s.goroutines == 0 || s.heap == 0 {
		return s, fmt.Errorf("/metrics has no go_goroutines or heap figure")
	}
	return s, sc.Err()
}

// settle waits until the node is quiet: with ok nil, until two samples a second apart agree
// on goroutines and descriptors; otherwise until ok holds, for at most a minute. It returns
// the last sample.
func (p nodeProbe) settle(t *testing.T, ok func(sample2) bool) sample2 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last sample2
	for i := 0; ; i++ {
		s, err := p.sample()
		if err != nil {
			t.Fatalf("node figures: %v", err)
		}
		if ok == nil && i > 0 && s.goroutines == last.goroutines && s.fds == last.fds {
			return s
		}
		if ok != nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			return s
		}
		last = s
		time.Sleep(time.Second)
	}
}
