package mediatest

import (
	"errors"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Remote is the SFU's side of a peer's signalling (a media.Peer).
type Remote interface {
	HandleDescription(webrtc.SessionDescription) error
	HandleCandidate(webrtc.ICECandidateInit) error
}

// Signaller adapts two functions to the SFU's Signaller (media.Signaller).
type Signaller struct {
	Description func(webrtc.SessionDescription)
	Candidate   func(webrtc.ICECandidateInit)
}

func (s Signaller) SendDescription(d webrtc.SessionDescription) { s.Description(d) }
func (s Signaller) SendCandidate(c webrtc.ICECandidateInit)     { s.Candidate(c) }

// Connect creates a peer from cfg and connects it to the SFU side that join returns, through
// two Queues (one per direction, like the two ends of a WebSocket), then starts its media.
// Errors handling a message are given to report, except those of a side already closed
// (closed, and ErrClosed), which are the expected end of a call. stop stops the queues; the
// caller closes the peer.
func Connect(cfg Config, join func(Signaller) (Remote, error), report func(what string, err error), closed error) (peer *Peer, stop func(), err error) {
	toSFU, toClient := NewQueue(), NewQueue()
	stop = func() { toClient.Stop(); toSFU.Stop() }
	check := func(what string, err error) {
		if err != nil && !errors.Is(err, closed) && !errors.Is(err, ErrClosed) {
			report(what, err)
		}
	}
	var remote Remote
	cfg.OnDescription = func(d webrtc.SessionDescription) {
		toSFU.Push(func() { check("SFU HandleDescription", remote.HandleDescription(d)) })
	}
	cfg.OnCandidate = func(c webrtc.ICECandidateInit) {
		toSFU.Push(func() { check("SFU HandleCandidate", remote.HandleCandidate(c)) })
	}
	client, err := NewPeer(cfg)
	if err != nil {
		stop()
		return nil, nil, err
	}
	remote, err = join(Signaller{
		Description: func(d webrtc.SessionDescription) {
			toClient.Push(func() { check("client HandleDescription", client.HandleDescription(d)) })
		},
		Candidate: func(c webrtc.ICECandidateInit) {
			toClient.Push(func() { check("client HandleCandidate", client.HandleCandidate(c)) })
		},
	})
	if err == nil {
		err = client.Start()
	}
	if err != nil {
		stop()
		client.Close()
		return nil, nil, err
	}
	return client, stop, nil
}

// Queue runs functions in order on its own goroutine, like a WebSocket writer: whoever
// pushes never blocks and never runs the receiver's code.
type Queue struct {
	mu    sync.Mutex
	items []func()
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

// NewQueue starts a queue; Stop ends it.
func NewQueue() *Queue {
	q := &Queue{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

// Push adds a function to run after those pushed before it.
func (q *Queue) Push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) run() {
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

// Stop ends the queue once the function running, if any, returns; the rest are dropped.
func (q *Queue) Stop() { close(q.quit); <-q.done }
