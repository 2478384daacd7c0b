package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// maxPendingCandidates bounds the candidates held before the first remote description; a
// browser sends a handful.
const maxPendingCandidates = 64

// Peer is one participant's PeerConnection. All negotiation runs on the peer's own loop
// goroutine, so SDP handling, subscription changes and the SFU's offers never interleave.
type Peer struct {
	id   string
	room *Room
	sig  Signaller
	pc   *webrtc.PeerConnection
	log  *slog.Logger

	ctx       context.Context // cancelled when the peer starts closing
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the loop and every goroutine serving this peer's tracks
	closeOnce sync.Once
	done      chan struct{}

	descriptions chan descriptionRequest
	resync       chan struct{} // cap 1: the room's tracks changed

	mu         sync.Mutex
	closed     bool
	candidates candidateGate

	// Owned by the loop goroutine (and by shutdown once the loop has ended).
	subscriptions map[*upTrack]*downTrack
	negotiated    bool // the browser's first offer has been answered
	stale         bool // subscriptions changed since the last description we sent
	midSeq        int  // numbers the mids of transceivers the SFU creates
	failed        bool // negotiation broke the connection; the peer is closing
}

type descriptionRequest struct {
	desc   webrtc.SessionDescription
	result chan error
}

func newPeer(r *Room, participantID string, sig Signaller) (*Peer, error) {
	log := r.log.With("participant", participantID)
	pc, err := r.sfu.api(log).NewPeerConnection(r.sfu.pcConfig)
	if err != nil {
		return nil, fmt.Errorf("media: new peer connection: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Peer{
		id:            participantID,
		room:          r,
		sig:           sig,
		pc:            pc,
		log:           log,
		ctx:           ctx,
		cancel:        cancel,
		done:          make(chan struct{}),
		descriptions:  make(chan descriptionRequest),
		resync:        make(chan struct{}, 1),
		subscriptions: make(map[*upTrack]*downTrack),
	}
	pc.OnICECandidate(p.onLocalCandidate)
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(p.onConnectionState)
	return p, nil
}

// start runs the negotiation loop.
func (p *Peer) start() {
	p.wg.Add(1)
	go p.loop()
}

// discard releases a peer that never joined its room.
func (p *Peer) discard() {
	p.cancel()
	if err := p.pc.GracefulClose(); err != nil {
		p.log.Debug("close peer connection", "err", err)
	}
}

// ID is the participant's ID.
func (p *Peer) ID() string { return p.id }

// Done is closed once the peer is closed: by Close, by Leave, by its room closing, or because
// its connection failed.
func (p *Peer) Done() <-chan struct{} { return p.done }

// HandleDescription applies an offer or answer from the participant. An offer that collides
// with the SFU's own pending offer is ignored (nil error): the SFU is the impolite side.
func (p *Peer) HandleDescription(desc webrtc.SessionDescription) error {
	req := descriptionRequest{desc: desc, result: make(chan error, 1)}
	select {
	case p.descriptions <- req:
		return <-req.result // the loop always answers a request it has taken
	case <-p.ctx.Done():
		return ErrClosed
	}
}

// HandleCandidate adds an ICE candidate from the participant. Candidates that arrive before
// the first description are held and applied after it.
func (p *Peer) HandleCandidate(c webrtc.ICECandidateInit) error {
	if err := checkCandidate(c); err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.mu.Unlock()
	if held, err := p.candidates.holdRemote(c); held || err != nil {
		return err
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		if p.closing() {
			return ErrClosed
		}
		return fmt.Errorf("%w: %w", ErrInvalidCandidate, err)
	}
	return nil
}

// checkCandidate rejects a candidate Pion could not parse, so that a bad one is reported even
// when it arrives early and is held. Candidates Pion parses but skips (unknown types) pass.
func checkCandidate(c webrtc.ICECandidateInit) error {
	value := strings.TrimPrefix(c.Candidate, "candidate:")
	if value == "" {
		return nil // end of candidates
	}
	_, err := ice.UnmarshalCandidate(value)
	if err != nil && !errors.Is(err, ice.ErrUnknownCandidateTyp) && !errors.Is(err, ice.ErrDetermineNetworkType) {
		return fmt.Errorf("%w: %w", ErrInvalidCandidate, err)
	}
	return nil
}

// Close closes the peer's connection, stops forwarding to and from it, and waits for its
// goroutines to end. The other participants stop receiving its tracks.
func (p *Peer) Close() {
	p.closeOnce.Do(p.shutdown)
	<-p.done
}

func (p *Peer) shutdown() {
	p.mu.Lock()
	p.closed = true
	p.candidates.close()
	p.mu.Unlock()

	p.cancel()
	p.room.remove(p)
	if err := p.pc.GracefulClose(); err != nil {
		p.log.Debug("close peer connection", "err", err)
	}
	p.wg.Wait()
	for up, d := range p.subscriptions {
		up.unsubscribe(d)
	}
	p.subscriptions = nil
	p.room.sfu.peers.Add(-1)
	close(p.done)
	p.log.Info("left")
}

func (p *Peer) requestResync() {
	select {
	case p.resync <- struct{}{}:
	default:
	}
}

// loop serializes negotiation (remote descriptions, subscription changes and our offers) and
// sends the subscriber its sender reports.
func (p *Peer) loop() {
	defer p.wg.Done()
	reports := time.NewTicker(senderReportInterval)
	defer reports.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-reports.C:
			p.sendSenderReports(now)
		case req := <-p.descriptions:
			err := p.applyDescription(req.desc)
			if err != nil && !p.failed && p.closing() {
				err = ErrClosed // closed under it: the error is the closing, not the description
			}
			req.result <- err
		case <-p.resync:
			if p.negotiated { // before the browser's first offer there is nothing to renegotiate
				p.syncSubscriptions()
				p.offerIfStale()
			}
		}
	}
}

// closing reports whether the peer or its connection is closing: we closed it, or Pion did
// because the browser hung up (our shutdown then follows from the state change).
func (p *Peer) closing() bool {
	return p.ctx.Err() != nil ||
		p.pc.SignalingState() == webrtc.SignalingStateClosed ||
		p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed
}

func (p *Peer) applyDescription(desc webrtc.SessionDescription) error {
	if p.closing() {
		return ErrClosed
	}
	switch desc.Type {
	case webrtc.SDPTypeOffer:
		return p.answer(desc)
	case webrtc.SDPTypeAnswer:
		return p.acceptAnswer(desc)
	default:
		return fmt.Errorf("%w: type %q", ErrInvalidDescription, desc.Type)
	}
}

func (p *Peer) answer(offer webrtc.SessionDescription) error {
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		// Our own offer is pending and we are impolite: the browser rolls back and answers it.
		p.log.Debug("ignoring an offer that collides with ours")
		return nil
	}
	if err := p.setRemote(offer); err != nil {
		return err
	}
	p.syncSubscriptions() // so that the answer already carries what it can
	answer, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(answer)
	}
	if err != nil {
		if p.closing() {
			return ErrClosed
		}
		p.fail("answer", err)
		return fmt.Errorf("media: answer: %w", err)
	}
	p.negotiated = true
	p.stale = !carriesAllSenders(answer, p.pc.GetTransceivers())
	p.sendDescription(answer)
	p.offerIfStale()
	return nil
}

func (p *Peer) acceptAnswer(answer webrtc.SessionDescription) error {
	if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return fmt.Errorf("%w: answer without a pending offer", ErrInvalidDescription)
	}
	if err := p.setRemote(answer); err != nil {
		return err // our offer stays pending: a valid answer may still come
	}
	p.offerIfStale()
	return nil
}

// setRemote applies a remote description. Pion cannot roll back (pion/webrtc#2133) and some
// of its checks run after it has moved the signaling state, so descriptions are checked first;
// one that still fails half-way leaves the connection unusable, and the peer is closed.
func (p *Peer) setRemote(desc webrtc.SessionDescription) error {
	if err := checkDescription(desc); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDescription, err)
	}
	before := p.pc.SignalingState()
	if err := p.pc.SetRemoteDescription(desc); err != nil {
		if p.closing() {
			return ErrClosed
		}
		if p.pc.SignalingState() != before {
			p.fail("remote description", err)
		}
		return fmt.Errorf("%w: %w", ErrInvalidDescription, err)
	}
	p.remoteDescriptionSet()
	return nil
}

// fail closes a peer whose negotiation cannot continue. It runs on the loop goroutine, which
// Close waits for, hence the goroutine.
func (p *Peer) fail(step string, err error) {
	p.log.Warn("negotiation failed; closing the participant's connection", "step", step, "err", err)
	p.failed = true
	go p.Close()
}

// checkDescription rejects SDP that Pion would only reject after changing state: no media, no
// ICE credentials, no DTLS fingerprint, a media section without a mid.
func checkDescription(desc webrtc.SessionDescription) error {
	parsed, err := desc.Unmarshal()
	if err != nil {
		return err
	}
	if len(parsed.MediaDescriptions) == 0 {
		return errors.New("no media sections")
	}
	for _, key := range []string{"ice-ufrag", "ice-pwd", "fingerprint"} {
		_, found := parsed.Attribute(key)
		for _, m := range parsed.MediaDescriptions {
			if _, ok := m.Attribute(key); ok {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("no a=%s", key)
		}
	}
	for i, m := range parsed.MediaDescriptions {
		if mid, _ := m.Attribute("mid"); mid == "" {
			return fmt.Errorf("media section %d has no a=mid", i)
		}
	}
	return nil
}

// offerIfStale offers our current tracks when they changed since the last description and
// the connection is stable; otherwise the offer waits for the next stable moment.
func (p *Peer) offerIfStale() {
	if !p.negotiated || !p.stale || p.pc.SignalingState() != webrtc.SignalingStateStable || p.closing() {
		return
	}
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.log.Error("renegotiation offer failed", "err", err)
		return // still stale: the next change or answer tries again
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		if p.pc.SignalingState() != webrtc.SignalingStateStable {
			p.fail("offer", err)
		} else {
			p.log.Error("renegotiation offer failed", "err", err)
		}
		return
	}
	p.stale = false
	p.sendDescription(offer)
}

// sendDescription sends a description, then any candidates gathered before the first one: a
// browser cannot add candidates before it has our description.
func (p *Peer) sendDescription(desc webrtc.SessionDescription) {
	p.sig.SendDescription(desc)
	for _, c := range p.candidates.localReady() {
		p.sig.SendCandidate(c)
	}
}

func (p *Peer) remoteDescriptionSet() {
	for _, c := range p.candidates.remoteReady() {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Warn("held ICE candidate rejected", "err", err)
		}
	}
}

// syncSubscriptions makes the connection send exactly the room's tracks from the others.
func (p *Peer) syncSubscriptions() {
	if p.closing() {
		return // the connection goes away with all its tracks
	}
	want := p.room.subscriptionsFor(p)
	wanted := make(map[*upTrack]bool, len(want))
	for _, up := range want {
		wanted[up] = true
	}
	for up, d := range p.subscriptions {
		if wanted[up] {
			continue
		}
		up.unsubscribe(d)
		delete(p.subscriptions, up)
		if err := p.pc.RemoveTrack(d.sender); err != nil {
			p.log.Debug("remove track", "track", up.id, "from", up.streamID, "err", err)
		}
		p.stale = true
	}
	for _, up := range want {
		if _, ok := p.subscriptions[up]; ok {
			continue
		}
		d := newDownTrack(up)
		d.subscriber = p.id
		sender, err := p.pc.AddTrack(d)
		if err != nil {
			p.log.Warn("add track", "track", up.id, "from", up.streamID, "err", err)
			continue
		}
		d.sender = sender
		p.nameNewTransceiver(sender)
		p.subscriptions[up] = d
		up.subscribe(d)
		p.wg.Add(1)
		go p.readSubscriberRTCP(d)
		p.stale = true
	}
}

// nameNewTransceiver gives a transceiver the SFU created a mid of its own ("s1", "s2", ...):
// browsers number theirs, so an SFU offer that crosses a browser offer never claims a mid the
// browser has just used. Real browsers forget such mids on rollback, but Pion-based clients
// do not.
func (p *Peer) nameNewTransceiver(sender *webrtc.RTPSender) {
	for _, t := range p.pc.GetTransceivers() {
		if t.Sender() != sender {
			continue
		}
		if t.Mid() == "" {
			p.midSeq++
			if err := t.SetMid(fmt.Sprintf("s%d", p.midSeq)); err != nil {
				p.log.Warn("set mid", "err", err)
			}
		}
		return
	}
}

// readSubscriberRTCP reads the subscriber's RTCP for one track: it answers NACKs from the
// track's history, takes the subscriber's receiver reports (quality.go) and turns PLI and
// FIR into keyframe requests.
func (p *Peer) readSubscriberRTCP(d *downTrack) {
	defer p.wg.Done()
	for {
		pkts, _, err := d.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.up.requestKeyframe()
			case *rtcp.TransportLayerNack:
				d.resend(pkt)
			case *rtcp.ReceiverReport:
				d.observeReports(pkt.Reports)
			case *rtcp.SenderReport:
				d.observeReports(pkt.Reports)
			}
		}
	}
}

func (p *Peer) onLocalCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return // end of gathering
	}
	init := c.ToJSON()
	if p.candidates.holdLocal(init) {
		p.sig.SendCandidate(init)
	}
}

// onTrack serves one track the participant publishes, for as long as it lasts. Pion runs it
// on its own goroutine; the peer's WaitGroup accounts for it.
func (p *Peer) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()

	up := newUpTrack(p, remote)
	log := p.log.With("track", up.id, "kind", up.kind.String(), "codec", up.codec.MimeType)
	if remote.RID() != "" {
		log.Warn("simulcast is not supported; forwarding each encoding as its own track", "rid", remote.RID())
	}
	p.wg.Go(func() { drainRTCP(receiver, up) })
	if up.kind == webrtc.RTPCodecTypeVideo {
		p.wg.Go(func() { up.keyframeLoop(p.pc) })
	}
	if !p.room.publish(up) {
		close(up.done)
		return
	}
	log.Info("publishing")
	up.forwardLoop()
	p.room.unpublish(up)
	log.Info("track ended")
}

// drainRTCP reads the publisher's RTCP (sender reports) so that the receive-side
// interceptors see it; the SFU keeps only the sender report's packet count (quality.go).
func drainRTCP(receiver *webrtc.RTPReceiver, up *upTrack) {
	buf := make([]byte, receiveBufferSize)
	for {
		n, _, err := receiver.Read(buf)
		if err != nil {
			return
		}
		up.observeSenderReport(buf[:n])
	}
}

func (p *Peer) onConnectionState(state webrtc.PeerConnectionState) {
	p.log.Info("connection state", "state", state.String())
	switch state {
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		if p.ctx.Err() == nil {
			go p.Close() // not inline: closing waits for Pion's goroutines, including this one's caller
		}
	}
}

// carriesAllSenders reports whether an answer we made sends every track we have: a track
// added on a new transceiver, or on one the browser offered as sendonly, needs our own offer.
func carriesAllSenders(answer webrtc.SessionDescription, transceivers []*webrtc.RTPTransceiver) bool {
	parsed, err := answer.Unmarshal()
	if err != nil {
		return false
	}
	sending := make(map[string]bool, len(parsed.MediaDescriptions))
	for _, m := range parsed.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		dir := "sendrecv"
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
		sending[mid] = m.MediaName.Port.Value != 0 && (dir == "sendrecv" || dir == "sendonly")
	}
	for _, t := range transceivers {
		if s := t.Sender(); s == nil || s.Track() == nil {
			continue
		}
		if t.Mid() == "" || !sending[t.Mid()] {
			return false
		}
	}
	return true
}
