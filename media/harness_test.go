package media

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/assist-video/assist/media/mediatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait; media on loopback normally flows within a second or two.
const testTimeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger writes to the test's output while the test runs and drops what goroutines log
// after it has ended. ASSIST_TEST_LOG=debug shows Pion's and the SFU's debug logs.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.stop) // registered first, so it runs after every other cleanup
	level := slog.LevelWarn
	if os.Getenv("ASSIST_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu      sync.Mutex
	w       io.Writer
	stopped bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return len(b), nil
	}
	return w.w.Write(b)
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

func newTestSFU(t *testing.T, cfg Config) *SFU {
	t.Helper()
	cfg.ICELoopback = true
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("SFU.Close: %v", err)
		}
	})
	return s
}

// queue delivers messages in order on its own goroutine, like a WebSocket writer: whoever
// pushes never blocks and never runs the receiver's code.
type queue struct {
	mu      sync.Mutex
	items   []func()
	wake    chan struct{}
	stopped chan struct{}
	done    chan struct{}
}

func newQueue() *queue {
	q := &queue{wake: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *queue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) run() {
	defer close(q.done)
	for {
		select {
		case <-q.stopped:
			return
		case <-q.wake:
		}
		for {
			q.mu.Lock()
			if len(q.items) == 0 {
				q.mu.Unlock()
				break
			}
			f := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			f()
		}
	}
}

func (q *queue) stop() {
	close(q.stopped)
	<-q.done
}

// signallerFuncs adapts two functions to Signaller.
type signallerFuncs struct {
	description func(webrtc.SessionDescription)
	candidate   func(webrtc.ICECandidateInit)
}

func (s signallerFuncs) SendDescription(d webrtc.SessionDescription) { s.description(d) }
func (s signallerFuncs) SendCandidate(c webrtc.ICECandidateInit)     { s.candidate(c) }

// participant is a mediatest peer joined to a room through in-process signalling.
type participant struct {
	id     string
	client *mediatest.Peer
	peer   *Peer
}

// join connects a new mediatest participant to the room and starts its media. Everything is
// closed when the test ends.
func join(t *testing.T, room *Room, id string) *participant {
	t.Helper()
	toSFU, toClient := newQueue(), newQueue()
	t.Cleanup(toClient.stop)
	t.Cleanup(toSFU.stop)

	p := &participant{id: id}
	// Errors from a side that has since been closed are the expected end of a call.
	report := func(what string, err error) {
		if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, mediatest.ErrClosed) {
			t.Errorf("%s: %s: %v", id, what, err)
		}
	}
	client, err := mediatest.NewPeer(mediatest.Config{
		Name:     id,
		Loopback: true,
		Logger:   testLogger(t),
		OnDescription: func(d webrtc.SessionDescription) {
			toSFU.push(func() { report("SFU HandleDescription", p.peer.HandleDescription(d)) })
		},
		OnCandidate: func(c webrtc.ICECandidateInit) {
			toSFU.push(func() { report("SFU HandleCandidate", p.peer.HandleCandidate(c)) })
		},
	})
	if err != nil {
		t.Fatalf("mediatest.NewPeer: %v", err)
	}
	t.Cleanup(client.Close)
	p.client = client

	p.peer, err = room.Join(id, signallerFuncs{
		description: func(d webrtc.SessionDescription) {
			toClient.push(func() { report("client HandleDescription", client.HandleDescription(d)) })
		},
		candidate: func(c webrtc.ICECandidateInit) {
			toClient.push(func() { report("client HandleCandidate", client.HandleCandidate(c)) })
		},
	})
	if err != nil {
		t.Fatalf("Join(%q): %v", id, err)
	}
	if err := client.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return p
}

// waitMedia waits until p receives audio and video from every one of the others.
func waitMedia(t *testing.T, ctx context.Context, p *participant, from ...*participant) {
	t.Helper()
	for _, o := range from {
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if err := p.client.WaitReceivedFrom(ctx, o.id, kind, 20); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
