package media

import (
	"sync"

	"github.com/pion/webrtc/v4"
)

// candidateGate holds ICE candidates back until they can be used: a remote candidate until a
// remote description is set (Pion refuses it before), a local one until our first description
// has gone out (a browser cannot add candidates before it has our description). Peer and Echo
// share it.
type candidateGate struct {
	mu            sync.Mutex
	closed        bool
	remoteSet     bool                      // a remote description has been applied
	pendingRemote []webrtc.ICECandidateInit // remote candidates that came before it
	localSent     bool                      // the first local description has been sent
	pendingLocal  []webrtc.ICECandidateInit // our candidates gathered before that
}

// holdRemote keeps a remote candidate while no remote description is set; it reports whether
// it did. It refuses candidates once closed or beyond maxPendingCandidates.
func (g *candidateGate) holdRemote(c webrtc.ICECandidateInit) (held bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return false, ErrClosed
	case g.remoteSet:
		return false, nil
	case len(g.pendingRemote) >= maxPendingCandidates:
		return false, ErrTooManyCandidates
	}
	g.pendingRemote = append(g.pendingRemote, c)
	return true, nil
}

// remoteReady marks the remote description set and returns the candidates held for it (only
// the first time).
func (g *candidateGate) remoteReady() []webrtc.ICECandidateInit {
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

// holdLocal keeps a local candidate until the first description is sent; it reports whether
// the caller should send it now (false when held or closed).
func (g *candidateGate) holdLocal(c webrtc.ICECandidateInit) (sendNow bool) {
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

// localReady marks the first description sent and returns the candidates held until then
// (only the first time).
func (g *candidateGate) localReady() []webrtc.ICECandidateInit {
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

// close drops everything held and refuses more.
func (g *candidateGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.pendingRemote, g.pendingLocal = nil, nil
}
