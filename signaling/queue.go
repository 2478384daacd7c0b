package signaling

import (
	"log/slog"
	"sync"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/wire"
)

// Waiting-room fan-out timing.
const (
	// queueRecomputeEvery bounds how often an organisation's line is recomputed on this node
	// while customers join in a burst; a single change goes out at once.
	queueRecomputeEvery = 250 * time.Millisecond
	// queueViewLinger keeps an organisation's view for a while after its last waiting socket
	// on this node went, so that a line that empties and fills again does not reload the
	// organisation's sessions each time.
	queueViewLinger = time.Minute
)

// waitingRooms keeps one view of each organisation's line per node (rooms.QueueWatch, fed by
// the sessions bucket, so it sees every node's changes) and tells this node's waiting
// customers' sockets when it changed. A socket is told with a non-blocking nudge on a channel
// of one; its own loop then reads its place from the latest snapshot: a change costs one
// recomputation per organisation and one small message per waiting socket, whatever the
// number of sessions.
type waitingRooms struct {
	store *rooms.Store
	log   *slog.Logger

	mu     sync.Mutex
	orgs   map[string]*orgLine
	closed bool
}

// orgLine is an organisation's view on this node and the sockets waiting in it.
type orgLine struct {
	watch   *rooms.QueueWatch
	waiting map[chan struct{}]struct{}
	linger  *time.Timer     // stops the watch when nobody has waited here for queueViewLinger
	nudges  []chan struct{} // reused by changed
}

func newWaitingRooms(store *rooms.Store, log *slog.Logger) *waitingRooms {
	return &waitingRooms{store: store, log: log, orgs: map[string]*orgLine{}}
}

// enter adds a waiting socket to its organisation's line; nudge (of capacity one) is signalled
// whenever the line changes. It returns the view to read places from and leave, which the
// socket calls when it stops waiting.
func (w *waitingRooms) enter(orgID string, nudge chan struct{}) (view *rooms.QueueWatch, leave func(), err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, rooms.ErrEnded
	}
	line := w.orgs[orgID]
	if line == nil {
		line = &orgLine{waiting: map[chan struct{}]struct{}{}}
		line.watch, err = w.store.WatchQueue(orgID, queueRecomputeEvery, func(*rooms.QueueSnapshot) { w.changed(orgID) })
		if err != nil {
			return nil, nil, err
		}
		w.orgs[orgID] = line
	}
	if line.linger != nil {
		line.linger.Stop()
		line.linger = nil
	}
	line.waiting[nudge] = struct{}{}
	var once sync.Once
	return line.watch, func() { once.Do(func() { w.leave(orgID, line, nudge) }) }, nil
}

func (w *waitingRooms) leave(orgID string, line *orgLine, nudge chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(line.waiting, nudge)
	if len(line.waiting) > 0 || w.closed || line.linger != nil {
		return
	}
	line.linger = time.AfterFunc(queueViewLinger, func() { w.expire(orgID, line) })
}

// expire stops an organisation's view nobody waits in any more.
func (w *waitingRooms) expire(orgID string, line *orgLine) {
	w.mu.Lock()
	if len(line.waiting) > 0 || w.orgs[orgID] != line || w.closed {
		w.mu.Unlock()
		return
	}
	delete(w.orgs, orgID)
	w.mu.Unlock()
	line.watch.Stop()
}

// changed nudges the organisation's waiting sockets; it runs on the view's goroutine. The
// nudges are copied under the lock and sent after it, without blocking: a socket already
// nudged reads the latest snapshot anyway.
func (w *waitingRooms) changed(orgID string) {
	w.mu.Lock()
	line := w.orgs[orgID]
	if line == nil {
		w.mu.Unlock()
		return
	}
	line.nudges = line.nudges[:0] // only this goroutine (the view's) uses the slice
	for ch := range line.waiting {
		line.nudges = append(line.nudges, ch)
	}
	nudges := line.nudges
	w.mu.Unlock()
	for _, ch := range nudges {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// close stops every view; it runs at shutdown, once the sockets have closed.
func (w *waitingRooms) close() {
	w.mu.Lock()
	w.closed = true
	lines := w.orgs
	w.orgs = map[string]*orgLine{}
	w.mu.Unlock()
	for _, line := range lines {
		if line.linger != nil {
			line.linger.Stop()
		}
		line.watch.Stop()
	}
}

// ---- the waiting customer's side (run by the participant's loop) ----

// enterQueue makes this waiting customer's socket follow the organisation's line. When the
// view cannot be had, the socket falls back to its place in its own session.
func (p *participant) enterQueue(me *rooms.Participant) {
	if p.queueTimeout == nil && p.srv.cfg.QueueTimeout > 0 && !p.timedOutDue {
		p.queueTimeout = time.NewTimer(time.Until(me.JoinedAt.Add(p.srv.cfg.QueueTimeout)))
	}
	if p.queueNudge != nil || p.queueUnavailable {
		return
	}
	nudge := make(chan struct{}, 1)
	view, leave, err := p.srv.waiting.enter(p.orgID, nudge)
	if err != nil {
		p.log.Warn("follow the organisation's line", "err", err)
		p.queueUnavailable = true
		return
	}
	p.queueNudge, p.queueView, p.leaveQueue = nudge, view, leave
}

// exitQueue stops following the line (admitted, denied, gone, or the socket closes).
func (p *participant) exitQueue() {
	if p.leaveQueue != nil {
		p.leaveQueue()
	}
	if p.queueTimeout != nil {
		p.queueTimeout.Stop()
	}
	p.queueNudge, p.queueView, p.leaveQueue, p.queueTimeout = nil, nil, nil, nil
}

// queueTimedOut is the loop's timer channel for queue-timeout, or nil.
func (p *participant) queueTimedOut() <-chan time.Time {
	if p.queueTimeout == nil {
		return nil
	}
	return p.queueTimeout.C
}

// sendWaiting tells the waiting customer their place, the line's length and the estimated
// wait. always sends even when nothing changed since the last message (an event in their
// session: the page looks again); otherwise only a change is sent. While the view has not yet
// seen the customer (just joined), nothing is sent: the view's next change nudges the socket.
func (p *participant) sendWaiting(sess *rooms.Session, always bool) {
	var w wire.Waiting
	if p.queueView != nil {
		snap := p.queueView.Snapshot()
		if w.Position = snap.Position(p.id); w.Position == 0 {
			return
		}
		w.QueueLength = snap.Length
		if d, ok := snap.EstimatedWait(w.Position); ok {
			seconds := int(d.Round(time.Second) / time.Second)
			w.EstimatedWaitSeconds = &seconds
		}
	} else if sess != nil {
		w.Position = sess.Position(p.id)
		w.QueueLength = len(sess.Waiting())
	} else {
		return
	}
	if p.timedOutDue && !p.timedOutSent {
		w.TimedOut, p.timedOutSent = true, true
		always = true
	}
	frame, err := wire.Encode(wire.TypeWaiting, w)
	if err != nil {
		return
	}
	if !always && string(frame) == p.lastWaiting {
		return
	}
	p.lastWaiting = string(frame)
	p.sendEncoded(frame)
}
