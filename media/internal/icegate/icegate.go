// Package icegate holds trickled ICE candidates back until they can be used, for both ends
// of a WebRTC connection that signal over Assist's socket: the SFU's peers (media.Peer,
// media.Echo) and the test peers that stand in for browsers (media/mediatest).
package icegate

import (
	"sync"

	"github.com/pion/webrtc/v4"
)

// Verdict is what HoldRemote did with a remote candidate.
type Verdict int

const (
	// Pass: a remote description is set; apply the candidate now.
	Pass Verdict = iota
	// Held: kept until RemoteReady.
	Held
	// Closed: the gate is closed; the candidate is dropped.
	Closed
	// Full: the gate already holds its limit of remote candidates; the candidate is dropped.
	Full
)

// Gate holds a remote candidate until a remote description is set (Pion refuses it before),
// and a local one until our first description has gone out (the other side cannot add
// candidates before it has our description). The zero value is an open gate. It is safe for
// concurrent use.
type Gate struct {
	mu            sync.Mutex
	closed        bool
	remoteSet     bool                      // a remote description has been applied
	pendingRemote []webrtc.ICECandidateInit // remote candidates that came before it
	localSent     bool                      // the first local description has been sent
	pendingLocal  []webrtc.ICECandidateInit // our candidates gathered before that
}

// HoldRemote keeps a remote candidate while no remote description is set, at most limit of
// them (limit ≤ 0: no limit).
func (g *Gate) HoldRemote(c webrtc.ICECandidateInit, limit int) Verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return Closed
	case g.remoteSet:
		return Pass
	case limit > 0 && len(g.pendingRemote) >= limit:
		return Full
	}
	g.pendingRemote = append(g.pendingRemote, c)
	return Held
}

// RemoteReady marks the remote description set and returns the candidates held for it (only
// the first time).
func (g *Gate) RemoteReady() []webrtc.ICECandidateInit {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.remoteSet {
		return nil
	}
	g.remoteSet = true
	held := g.pendingRemote
	g.pendingRemote = nil
	return held
}

// HoldLocal keeps a local candidate until the first description is sent; it reports whether
// the caller should send it now (false when held or closed).
func (g *Gate) HoldLocal(c webrtc.ICECandidateInit) (sendNow bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	if !g.localSent {
		g.pendingLocal = append(g.pendingLocal, c)
		return false
	}
	return true
}

// LocalReady marks the first description sent and returns the candidates held until then
// (only the first time).
func (g *Gate) LocalReady() []webrtc.ICECandidateInit {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.localSent {
		return nil
	}
	g.localSent = true
	held := g.pendingLocal
	g.pendingLocal = nil
	return held
}

// Close drops everything held and refuses more.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.pendingRemote, g.pendingLocal = nil, nil
}
