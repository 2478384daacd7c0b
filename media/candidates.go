package media

import (
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/internal/icegate"
)

// candidateGate holds ICE candidates back until they can be used: a remote candidate until a
// remote description is set, a local one until our first description has gone out. Peer and
// Echo use it; it is icegate.Gate (shared with media/mediatest's test peers) with the SFU's
// limit and errors.
type candidateGate struct{ g icegate.Gate }

// holdRemote keeps a remote candidate while no remote description is set; it reports whether
// it did. It refuses candidates once closed or beyond maxPendingCandidates.
func (c *candidateGate) holdRemote(init webrtc.ICECandidateInit) (held bool, err error) {
	switch c.g.HoldRemote(init, maxPendingCandidates) {
	case icegate.Held:
		return true, nil
	case icegate.Closed:
		return false, ErrClosed
	case icegate.Full:
		return false, ErrTooManyCandidates
	}
	return false, nil
}

// remoteReady marks the remote description set and returns the candidates held for it (only
// the first time).
func (c *candidateGate) remoteReady() []webrtc.ICECandidateInit { return c.g.RemoteReady() }

// holdLocal keeps a local candidate until the first description is sent; it reports whether
// the caller should send it now (false when held or closed).
func (c *candidateGate) holdLocal(init webrtc.ICECandidateInit) (sendNow bool) {
	return c.g.HoldLocal(init)
}

// localReady marks the first description sent and returns the candidates held until then
// (only the first time).
func (c *candidateGate) localReady() []webrtc.ICECandidateInit { return c.g.LocalReady() }

// close drops everything held and refuses more.
func (c *candidateGate) close() { c.g.Close() }
