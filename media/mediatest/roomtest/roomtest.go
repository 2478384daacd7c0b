// Package roomtest joins mediatest peers to a media.Room through in-process signalling, for
// the tests of packages that sit on the SFU (recording, captions): each direction is a queue
// delivered in order on its own goroutine, like a WebSocket writer.
package roomtest

import (
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/mediatest"
)

// Join connects a mediatest peer named id to the room and starts it; options change its
// configuration (for example NoVideo). The peer and its signalling stop when the test ends.
func Join(t testing.TB, room *media.Room, id string, log *slog.Logger, options ...func(*mediatest.Config)) *mediatest.Peer {
	t.Helper()
	toSFU, toClient := newQueue(), newQueue()
	t.Cleanup(toClient.stop)
	t.Cleanup(toSFU.stop)
	report := func(what string, err error) {
		if err != nil && !errors.Is(err, media.ErrClosed) && !errors.Is(err, mediatest.ErrClosed) {
			t.Logf("%s: %s: %v", id, what, err)
		}
	}
	var peer *media.Peer
	cfg := mediatest.Config{
		Name:     id,
		Loopback: true,
		Logger:   log,
		OnDescription: func(d webrtc.SessionDescription) {
			toSFU.push(func() { report("SFU HandleDescription", peer.HandleDescription(d)) })
		},
		OnCandidate: func(c webrtc.ICECandidateInit) {
			toSFU.push(func() { report("SFU HandleCandidate", peer.HandleCandidate(c)) })
		},
	}
	for _, o := range options {
		o(&cfg)
	}
	client, err := mediatest.NewPeer(cfg)
	if err != nil {
		t.Fatalf("mediatest.NewPeer: %v", err)
	}
	t.Cleanup(client.Close)
	peer, err = room.Join(id, signaller{
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
	return client
}

// queue runs functions in order on its own goroutine.
type queue struct {
	mu    sync.Mutex
	items []func()
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

func newQueue() *queue {
	q := &queue{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
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
		case <-q.quit:
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

func (q *queue) stop() { close(q.quit); <-q.done }

type signaller struct {
	description func(webrtc.SessionDescription)
	candidate   func(webrtc.ICECandidateInit)
}

func (s signaller) SendDescription(d webrtc.SessionDescription) { s.description(d) }
func (s signaller) SendCandidate(c webrtc.ICECandidateInit)     { s.candidate(c) }
