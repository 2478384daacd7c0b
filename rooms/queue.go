package rooms

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// recentAdmissions is how many of an organisation's latest admissions estimate the wait.
const recentAdmissions = 20

// QueueSnapshot is an organisation's waiting room at one moment, across all its sessions:
// every queued customer (waiting, or reconnecting to the waiting room) in order of arrival,
// and the estimate from recent admissions. It never changes once published.
type QueueSnapshot struct {
	OrgID string
	// Length is how many customers are queued in the organisation.
	Length int
	// PerPlace is how long one place in the line takes: the median, over the last
	// recentAdmissions admitted customers, of how long each stood at the head of the line
	// (from the later of their arrival and the previous admission, to their admission). It is
	// meaningless unless Known.
	PerPlace time.Duration
	Known    bool
	// Version counts the snapshots of this view.
	Version   uint64
	positions map[string]int
	order     []queuedCustomer // everyone queued, by place (see Waiting)
}

// Position is a customer's place in the organisation's line (1 = next), or 0 when they are
// not queued (or not yet seen by this view).
func (q *QueueSnapshot) Position(participantID string) int {
	if q == nil {
		return 0
	}
	return q.positions[participantID]
}

// EstimatedWait is how long the customer at position is likely to wait from now: position
// times PerPlace. It is unknown (false) when the organisation has admitted nobody yet.
func (q *QueueSnapshot) EstimatedWait(position int) (time.Duration, bool) {
	if q == nil || !q.Known || position < 1 {
		return 0, false
	}
	return time.Duration(position) * q.PerPlace, true
}

// queuedCustomer is one place in the line.
type queuedCustomer struct {
	id    string
	since time.Time // first arrival: coming back keeps the place
	sess  *Session  // the record the customer was seen in (read only), for QueueSnapshot.Waiting
}

// admission is one admitted customer, for the estimate.
type admission struct {
	id             string
	arrived, taken time.Time
}

// queueState is the mutable side of a view: the queued customers of each session and the
// latest admissions. One goroutine (the watch) owns it.
type queueState struct {
	orgID      string
	sessions   map[string][]queuedCustomer // only sessions with someone queued
	revisions  map[string]uint64           // the KV revision of each session applied
	admissions []admission                 // the latest, oldest first, at most recentAdmissions
	version    uint64
}

func newQueueState(orgID string) *queueState {
	return &queueState{orgID: orgID, sessions: map[string][]queuedCustomer{}, revisions: map[string]uint64{}}
}

// applyRevision applies a session's record at a KV revision unless a later one was applied:
// records come from the watch and from sockets that read them (Observe), in any order.
func (q *queueState) applyRevision(sessionID string, rev uint64, sess *Session) bool {
	if rev <= q.revisions[sessionID] {
		return false
	}
	q.revisions[sessionID] = rev
	q.apply(sessionID, sess)
	return true
}

// apply takes in a session's latest record; nil removes it.
func (q *queueState) apply(sessionID string, sess *Session) {
	if sess == nil {
		delete(q.sessions, sessionID)
		return
	}
	var line []queuedCustomer
	for i := range sess.Participants {
		p := &sess.Participants[i]
		if p.Role != RoleCustomer {
			continue
		}
		if p.Queued() && sess.State != SessionEnded {
			line = append(line, queuedCustomer{id: p.ID, since: p.JoinedAt, sess: sess})
		}
		if p.AdmittedAt != nil {
			q.admitted(admission{id: p.ID, arrived: p.JoinedAt, taken: *p.AdmittedAt})
		}
	}
	if len(line) == 0 {
		delete(q.sessions, sessionID)
	} else {
		q.sessions[sessionID] = line
	}
}

// admitted remembers an admission if it is among the latest; records are seen many times.
func (q *queueState) admitted(a admission) {
	if len(q.admissions) == recentAdmissions && !a.taken.After(q.admissions[0].taken) {
		return
	}
	if slices.ContainsFunc(q.admissions, func(x admission) bool { return x.id == a.id }) {
		return
	}
	i, _ := slices.BinarySearchFunc(q.admissions, a, func(x, y admission) int { return x.taken.Compare(y.taken) })
	q.admissions = slices.Insert(q.admissions, i, a)
	if len(q.admissions) > recentAdmissions {
		q.admissions = slices.Delete(q.admissions, 0, 1)
	}
}

// snapshot orders everyone queued and computes the estimate.
func (q *queueState) snapshot() *QueueSnapshot {
	n := 0
	for _, line := range q.sessions {
		n += len(line)
	}
	all := make([]queuedCustomer, 0, n)
	for _, line := range q.sessions {
		all = append(all, line...)
	}
	slices.SortFunc(all, func(a, b queuedCustomer) int {
		if c := a.since.Compare(b.since); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	q.version++
	snap := &QueueSnapshot{OrgID: q.orgID, Length: n, Version: q.version, positions: make(map[string]int, n), order: all}
	for i, c := range all {
		snap.positions[c.id] = i + 1
	}
	snap.PerPlace, snap.Known = perPlace(q.admissions)
	return snap
}

// perPlace is the median time the latest admitted customers spent at the head of the line:
// from the later of their arrival and the admission before theirs, to their own admission.
func perPlace(admissions []admission) (time.Duration, bool) {
	if len(admissions) == 0 {
		return 0, false
	}
	spans := make([]time.Duration, len(admissions))
	for i, a := range admissions {
		from := a.arrived
		if i > 0 && admissions[i-1].taken.After(from) {
			from = admissions[i-1].taken
		}
		spans[i] = max(a.taken.Sub(from), 0)
	}
	slices.SortFunc(spans, cmp.Compare)
	return spans[len(spans)/2], true
}

// QueueWatch keeps one organisation's QueueSnapshot up to date from the sessions bucket (so it
// sees every node's changes) and says when it changed. One goroutine owns it; Stop ends it.
type QueueWatch struct {
	snap     atomic.Pointer[QueueSnapshot]
	observed chan observedSession
	cancel   context.CancelFunc
	done     chan struct{}
	watcher  jetstream.KeyWatcher
}

// Snapshot is the latest view, or nil until the organisation's sessions are loaded.
func (w *QueueWatch) Snapshot() *QueueSnapshot { return w.snap.Load() }

// observedSession is a session record a socket read, at its KV revision.
type observedSession struct {
	sess *Session
	rev  uint64
}

// Observe hands the view a session record read at a KV revision (SessionRevision), so that a
// socket's own state is in the view as soon as it has read it, even when the watch lags (as
// it does for a while after NATS restarts). An older record than the view's is ignored.
func (w *QueueWatch) Observe(sess *Session, rev uint64) {
	select {
	case w.observed <- observedSession{sess: sess, rev: rev}:
	case <-w.done:
	}
}

// SessionRevision reads one session with its KV revision (for QueueWatch.Observe).
func (s *Store) SessionRevision(ctx context.Context, orgID, id string) (*Session, uint64, error) {
	if !ValidID(orgID) || !ValidID(id) {
		return nil, 0, ErrNotFound
	}
	return getJSON[Session](ctx, s.sessions, sessionKey(orgID, id))
}

// Stop ends the watch and waits for its goroutine.
func (w *QueueWatch) Stop() {
	w.cancel()
	<-w.done
}

// WatchQueue follows an organisation's waiting room. It loads the organisation's sessions,
// then applies every change to them; a new snapshot is published (and changed called, from
// the watch's goroutine: it must not block) at most once per every, at once when the last
// publication is older than that, so one admission reaches the waiting customers without delay
// and a burst of joins costs a few recomputations, not one each.
func (s *Store) WatchQueue(orgID string, every time.Duration, changed func(*QueueSnapshot)) (*QueueWatch, error) {
	if !ValidID(orgID) {
		return nil, ErrNotFound
	}
	ctx, cancel := context.WithCancel(context.Background())
	watcher, err := s.sessions.Watch(ctx, orgID+".*")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("rooms: watch the queue of %s: %w", orgID, err)
	}
	w := &QueueWatch{cancel: cancel, done: make(chan struct{}), watcher: watcher, observed: make(chan observedSession, 64)}
	go w.run(ctx, newQueueState(orgID), every, changed, s.log.With("org", orgID))
	return w, nil
}

func (w *QueueWatch) run(ctx context.Context, state *queueState, every time.Duration, changed func(*QueueSnapshot), log *slog.Logger) {
	defer close(w.done)
	defer func() { _ = w.watcher.Stop() }()
	prefix := state.orgID + "."
	loaded, dirty := false, false
	var last time.Time
	var later *time.Timer
	var laterC <-chan time.Time
	defer func() {
		if later != nil {
			later.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-laterC:
			laterC = nil
		case o := <-w.observed:
			if state.applyRevision(o.sess.ID, o.rev, o.sess) {
				dirty = true
			}
		case e, ok := <-w.watcher.Updates():
			if !ok {
				return
			}
			if e == nil { // the initial values are all in
				loaded, dirty = true, true
				break
			}
			sessionID := strings.TrimPrefix(e.Key(), prefix)
			if e.Operation() != jetstream.KeyValuePut {
				dirty = state.applyRevision(sessionID, e.Revision(), nil) || dirty
				break
			}
			var sess Session
			if err := json.Unmarshal(e.Value(), &sess); err != nil {
				log.Warn("queue: corrupt session", "session", sessionID, "err", err)
				break
			}
			dirty = state.applyRevision(sessionID, e.Revision(), &sess) || dirty
		}
		if !loaded || !dirty || laterC != nil {
			continue
		}
		if wait := every - time.Since(last); wait > 0 {
			if later == nil {
				later = time.NewTimer(wait)
			} else {
				later.Reset(wait)
			}
			laterC = later.C
			continue
		}
		snap := state.snapshot()
		w.snap.Store(snap)
		last, dirty = time.Now(), false
		changed(snap)
	}
}
