package media

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Signaller carries the SFU's SDP and ICE candidates to one participant. It is implemented by
// the signaling layer; it must not block (queue the message for the participant's writer) and
// it is never called while the SFU holds a lock. Descriptions come in order from one
// goroutine; candidates may come from another at the same time, but never before the first
// description, so the browser can always apply them.
type Signaller interface {
	SendDescription(webrtc.SessionDescription)
	SendCandidate(webrtc.ICECandidateInit)
}

// Room is one session's call: its participants' peers and the tracks they publish. Every
// participant receives every track published by the others.
type Room struct {
	sfu *SFU
	id  string
	log *slog.Logger

	mu     sync.Mutex
	closed bool
	peers  map[string]*Peer
	tracks []*upTrack             // published tracks of all peers, in publishing order
	taps   map[string][]*tapEntry // by participant ID; see tap.go
}

func newRoom(s *SFU, sessionID string) *Room {
	return &Room{
		sfu:   s,
		id:    sessionID,
		log:   s.log.With("session", sessionID),
		peers: make(map[string]*Peer),
	}
}

// Join creates the participant's peer. The participant's browser then sends its first offer
// through HandleDescription. Joining again with an ID that is already in the room replaces
// (closes) the old peer. Join fails with ErrClosed once the room is closed.
func (r *Room) Join(participantID string, sig Signaller) (*Peer, error) {
	if sig == nil {
		return nil, fmt.Errorf("media: join %q: nil Signaller", participantID)
	}
	p, err := newPeer(r, participantID, sig)
	if err != nil {
		return nil, err
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		p.discard()
		return nil, fmt.Errorf("media: join session %q: %w", r.id, ErrClosed)
	}
	old := r.peers[participantID]
	r.peers[participantID] = p
	r.sfu.peers.Add(1)
	p.start()
	r.mu.Unlock()

	if old != nil {
		p.log.Info("replacing the participant's previous connection")
		old.Close()
	}
	p.log.Info("joined")
	return p, nil
}

// Leave closes the participant's peer, if it is in the room; the other participants stop
// receiving its tracks.
func (r *Room) Leave(participantID string) {
	r.mu.Lock()
	p := r.peers[participantID]
	r.mu.Unlock()
	if p != nil {
		p.Close()
	}
}

// close closes the room and all its peers, and waits for them.
func (r *Room) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	peers := make([]*Peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	r.mu.Unlock()

	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(p.Close)
	}
	wg.Wait()
	r.log.Info("room closed")
}

// remove takes a closing peer and its tracks out of the room and tells the others.
func (r *Room) remove(p *Peer) {
	r.mu.Lock()
	if r.peers[p.id] == p {
		delete(r.peers, p.id)
	}
	r.tracks = slices.DeleteFunc(r.tracks, func(t *upTrack) bool { return t.publisher == p })
	others := r.othersLocked(p)
	r.mu.Unlock()
	resyncAll(others)
}

// publish adds a track to the room and tells the other peers to subscribe. It reports false
// when the publisher is no longer in the room.
func (r *Room) publish(t *upTrack) bool {
	r.mu.Lock()
	if r.closed || r.peers[t.publisher.id] != t.publisher {
		r.mu.Unlock()
		return false
	}
	r.tracks = append(r.tracks, t)
	t.setTaps(r.tapsLocked(t.publisher.id))
	others := r.othersLocked(t.publisher)
	r.mu.Unlock()
	resyncAll(others)
	return true
}

// unpublish removes an ended track and tells the other peers to unsubscribe.
func (r *Room) unpublish(t *upTrack) {
	r.mu.Lock()
	n := len(r.tracks)
	r.tracks = slices.DeleteFunc(r.tracks, func(u *upTrack) bool { return u == t })
	removed := len(r.tracks) != n
	others := r.othersLocked(t.publisher)
	r.mu.Unlock()
	if removed {
		resyncAll(others)
	}
}

// subscriptionsFor is the tracks p should receive: everything published by the others. It is
// empty once p has left the room.
func (r *Room) subscriptionsFor(p *Peer) []*upTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peers[p.id] != p {
		return nil
	}
	var out []*upTrack
	for _, t := range r.tracks {
		if t.publisher != p {
			out = append(out, t)
		}
	}
	return out
}

func (r *Room) othersLocked(p *Peer) []*Peer {
	others := make([]*Peer, 0, len(r.peers))
	for _, q := range r.peers {
		if q != p {
			others = append(others, q)
		}
	}
	return others
}

func resyncAll(peers []*Peer) {
	for _, p := range peers {
		p.requestResync()
	}
}

// ParticipantStats is one participant's published tracks.
type ParticipantStats struct {
	ParticipantID string
	Tracks        []TrackStats
}

// TrackStats counts one published track. Received counts what the SFU got from the publisher;
// Forwarded sums what it wrote to all subscribers (packets and RTP bytes, header included).
type TrackStats struct {
	ID    string
	Kind  string // "audio" or "video"
	Codec string // MIME type, e.g. "video/VP8"

	PacketsReceived, BytesReceived   uint64
	PacketsForwarded, BytesForwarded uint64
}

// Stats reports every participant in the room, ordered by participant ID, with the counters
// of the tracks it currently publishes.
func (r *Room) Stats() []ParticipantStats {
	r.mu.Lock()
	peers := make([]*Peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	tracks := slices.Clone(r.tracks)
	r.mu.Unlock()

	slices.SortFunc(peers, func(a, b *Peer) int { return strings.Compare(a.id, b.id) })
	out := make([]ParticipantStats, 0, len(peers))
	for _, p := range peers {
		ps := ParticipantStats{ParticipantID: p.id}
		for _, t := range tracks {
			if t.publisher == p {
				ps.Tracks = append(ps.Tracks, t.stats())
			}
		}
		out = append(out, ps)
	}
	return out
}
