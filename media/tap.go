package media

import (
	"fmt"
	"slices"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Tap receives a copy of every RTP packet a participant publishes, before the SFU rewrites it
// for subscribers (original SSRC, payload type, sequence numbers and timestamps). It is how the
// recorder listens in without the SFU knowing about recording.
//
// WriteRTP is called on the track's forwarding goroutine (one per published track, so calls for
// a participant's audio and video may run at the same time). It must return quickly and must
// not keep pkt or its payload after returning: the SFU reuses both for the next packet.
type Tap interface {
	WriteRTP(kind string, codec webrtc.RTPCodecParameters, pkt *rtp.Packet)
}

// tapEntry boxes a Tap so that removal can tell two AddTap calls with the same value apart.
type tapEntry struct{ tap Tap }

// AddTap starts copying the participant's published packets to t: those of the tracks it
// publishes now and of any it publishes later, also after it reconnects. remove stops it and
// may be called more than once. AddTap fails with ErrClosed once the room is closed.
func (r *Room) AddTap(participantID string, t Tap) (remove func(), err error) {
	if t == nil {
		return nil, fmt.Errorf("media: add tap for %q: nil Tap", participantID)
	}
	e := &tapEntry{tap: t}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("media: add tap in session %q: %w", r.id, ErrClosed)
	}
	if r.taps == nil {
		r.taps = make(map[string][]*tapEntry)
	}
	r.taps[participantID] = append(r.taps[participantID], e)
	r.refreshTapsLocked(participantID)
	r.mu.Unlock()

	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.taps[participantID] = slices.DeleteFunc(r.taps[participantID], func(x *tapEntry) bool { return x == e })
		if len(r.taps[participantID]) == 0 {
			delete(r.taps, participantID)
		}
		r.refreshTapsLocked(participantID)
	}, nil
}

// RequestKeyframe asks every video track the participant publishes for a keyframe; requests
// coalesce with the SFU's own.
func (r *Room) RequestKeyframe(participantID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tracks {
		if t.publisher.id == participantID {
			t.requestKeyframe()
		}
	}
}

// refreshTapsLocked gives every published track of the participant the current tap list.
func (r *Room) refreshTapsLocked(participantID string) {
	for _, t := range r.tracks {
		if t.publisher.id == participantID {
			t.setTaps(r.tapsLocked(participantID))
		}
	}
}

// tapsLocked is a fresh copy of the participant's taps, nil when there are none.
func (r *Room) tapsLocked(participantID string) []Tap {
	entries := r.taps[participantID]
	if len(entries) == 0 {
		return nil
	}
	out := make([]Tap, len(entries))
	for i, e := range entries {
		out[i] = e.tap
	}
	return out
}

// setTaps replaces the track's taps; the forwarding loop loads them once per packet.
func (u *upTrack) setTaps(taps []Tap) {
	if len(taps) == 0 {
		u.taps.Store(nil)
		return
	}
	u.taps.Store(&taps)
}

// tap hands the packet to the track's taps, if any, before forward rewrites it.
func (u *upTrack) tap(pkt *rtp.Packet) {
	taps := u.taps.Load()
	if taps == nil {
		return
	}
	for _, t := range *taps {
		t.WriteRTP(u.kindName, u.params, pkt)
	}
}

// Participants lists the IDs of the participants in the room, in no particular order.
func (r *Room) Participants() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.peers))
	for id := range r.peers {
		out = append(out, id)
	}
	return out
}
