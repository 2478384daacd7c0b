// Package mediatest is a WebRTC participant written in Go, for tests of anything that carries
// media through Assist's SFU. A Peer behaves like the browser page: it publishes a real VP8
// camera and Opus microphone (short clips replayed in real time), answers keyframe requests by
// restarting the clip at its keyframe, receives the other participants' tracks and counts what
// arrives (packets, bytes, keyframes).
//
// It plays the polite side of perfect negotiation as far as Pion allows: it makes the first
// offer (at Start) and answers every offer of the SFU. Pion cannot roll back a local offer
// (pion/webrtc#2133: v4 rejects every rollback transition), so this peer never offers again:
// its tracks are fixed at Start, and the SFU never offers before it has answered the first
// offer, so no offer of the SFU can cross one of the peer's. Should one do so anyway,
// HandleDescription returns ErrCollision instead of rolling back as a browser would. The SFU's
// side of a collision is tested in package media with a scripted peer.
//
// It does not know how signalling travels: the test gives it two callbacks for what it sends
// (Config.OnDescription, Config.OnCandidate) and calls HandleDescription and HandleCandidate
// with what the SFU sends back.
package mediatest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/assist-video/assist/media/internal/icegate"
	"github.com/assist-video/assist/media/internal/pionlog"
)

var (
	// ErrClosed is returned by a closed Peer.
	ErrClosed = errors.New("mediatest: peer closed")
	// ErrCollision is returned when the SFU's offer crosses the peer's own, which a Pion peer
	// cannot resolve by rolling back (see the package comment).
	ErrCollision = errors.New("mediatest: offer collision")
)

// Config describes a test participant.
type Config struct {
	// Name labels the peer in logs and is the stream ID of its published tracks.
	Name string
	// NoVideo and NoAudio leave out the camera or the microphone.
	NoVideo, NoAudio bool
	// SyntheticVideo, if set, replaces the camera clip with generated frames at a chosen
	// bitrate (see SyntheticVideo); nil plays the clip (320x240, about 200 kbit/s).
	SyntheticVideo *SyntheticVideo
	// Loopback restricts ICE to 127.0.0.1, for hermetic tests; the SFU then needs
	// media.Config.ICELoopback.
	Loopback bool
	// ICEServers are STUN/TURN servers for the peer, as a browser would get in "welcome".
	ICEServers []webrtc.ICEServer
	// RelayOnly uses only TURN relay candidates, like a browser with iceTransportPolicy
	// "relay" or behind a firewall that blocks direct UDP.
	RelayOnly bool
	// TCPOnly uses only ICE over TCP (active candidates towards the SFU's passive ones), like
	// a browser on a network that drops UDP; the SFU then needs media.Config.ICETCPAddr.
	TCPOnly bool
	// OnDescription and OnCandidate carry the peer's signalling to the SFU; they should not
	// block for long. Descriptions come in order from one goroutine; candidates may come from
	// another at the same time, but never before the first description.
	OnDescription func(webrtc.SessionDescription)
	OnCandidate   func(webrtc.ICECandidateInit)
	// Logger receives the peer's and Pion's logs; nil discards them.
	Logger *slog.Logger
}

// Peer is one test participant.
type Peer struct {
	cfg Config
	log *slog.Logger
	pc  *webrtc.PeerConnection

	video      *webrtc.TrackLocalStaticSample
	audio      *webrtc.TrackLocalStaticSample
	videoClip  *videoClip
	synthetic  *syntheticVideo
	audioClip  [][]byte
	keyframe   atomic.Bool   // the SFU asked for a keyframe
	keyframeRq atomic.Uint64 // PLIs and FIRs received

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once

	descriptions chan descriptionRequest
	negotiate    chan struct{} // cap 1: Start asks for the first offer
	offered      bool          // owned by the loop

	candidates icegate.Gate // the SFU's and our candidates, until they can be used

	mu     sync.Mutex
	closed bool
	remote []*remoteTrack
}

type descriptionRequest struct {
	desc   webrtc.SessionDescription
	result chan error
}

// remoteTrack counts one received track; the reading goroutine writes, anyone reads.
type remoteTrack struct {
	streamID, trackID string
	kind              webrtc.RTPCodecType
	codec             string
	ssrc              uint32

	packets, bytes, keyframes atomic.Uint64
	ended                     atomic.Bool
}

// TrackCount is what a Peer has received on one remote track.
type TrackCount struct {
	StreamID  string // the publishing participant's ID, as the SFU labels it
	TrackID   string
	Kind      webrtc.RTPCodecType
	Codec     string // MIME type
	Packets   uint64
	Bytes     uint64 // RTP bytes, header included
	Keyframes uint64 // VP8 keyframes started
	Ended     bool   // the SFU stopped sending it (renegotiated away)
}

// NewPeer builds a peer. It sends nothing until Start, but already handles descriptions and
// candidates.
func NewPeer(cfg Config) (*Peer, error) {
	if cfg.OnDescription == nil || cfg.OnCandidate == nil {
		return nil, errors.New("mediatest: Config.OnDescription and Config.OnCandidate are required")
	}
	if cfg.Name == "" {
		cfg.Name = "mediatest"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("mediatest", cfg.Name)

	api, err := newAPI(cfg, log)
	if err != nil {
		return nil, err
	}
	policy := webrtc.ICETransportPolicyAll
	if cfg.RelayOnly {
		policy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: cfg.ICEServers, ICETransportPolicy: policy})
	if err != nil {
		return nil, fmt.Errorf("mediatest: new peer connection: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Peer{
		cfg:          cfg,
		log:          log,
		pc:           pc,
		ctx:          ctx,
		cancel:       cancel,
		descriptions: make(chan descriptionRequest),
		negotiate:    make(chan struct{}, 1),
	}
	if err := p.prepareMedia(); err != nil {
		cancel()
		_ = pc.Close()
		return nil, err
	}
	pc.OnICECandidate(p.onLocalCandidate)
	pc.OnTrack(p.onTrack)
	p.wg.Add(1)
	go p.loop()
	return p, nil
}

// newAPI builds what a browser has: Opus and VP8, Pion's default interceptors (NACK, reports,
// TWCC).
func newAPI(cfg Config, log *slog.Logger) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}}},
		PayloadType:        96,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	registry := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, registry); err != nil {
		return nil, err
	}
	var s webrtc.SettingEngine
	s.LoggerFactory = pionlog.Factory{Logger: log}
	network, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	s.SetNet(bufferedNet{network})
	if cfg.Loopback {
		s.SetIncludeLoopbackCandidate(true)
		s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	if cfg.TCPOnly {
		s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(registry), webrtc.WithSettingEngine(s)), nil
}

// receiveBuffer is the receive buffer asked for on each of a peer's UDP sockets (the kernel
// caps it at net.core.rmem_max). The default (~200 kB, ~90 full-size packets) overflows in
// a fraction of a second of a 720p stream whenever a load generator running a hundred peers
// falls behind, and every overflow comes back to the SFU as NACKs.
const receiveBuffer = 1 << 20

// bufferedNet is the standard network with bigger socket receive buffers.
type bufferedNet struct{ *stdnet.Net }

func (n bufferedNet) ListenUDP(network string, addr *net.UDPAddr) (transport.UDPConn, error) {
	conn, err := n.Net.ListenUDP(network, addr)
	if err == nil {
		_ = conn.SetReadBuffer(receiveBuffer)
	}
	return conn, err
}

func (p *Peer) prepareMedia() error {
	var err error
	if !p.cfg.NoVideo {
		if p.cfg.SyntheticVideo != nil {
			p.synthetic, err = newSyntheticVideo(*p.cfg.SyntheticVideo)
		} else {
			p.videoClip, err = loadVideo()
		}
		if err != nil {
			return err
		}
		p.video, err = webrtc.NewTrackLocalStaticSample(
			webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "camera", p.cfg.Name)
		if err != nil {
			return err
		}
	}
	if !p.cfg.NoAudio {
		if p.audioClip, err = loadAudio(); err != nil {
			return err
		}
		p.audio, err = webrtc.NewTrackLocalStaticSample(
			webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "microphone", p.cfg.Name)
		if err != nil {
			return err
		}
	}
	return nil
}

// Start adds the camera and microphone, starts playing them in real time and makes the
// first offer (like a browser once it has joined the call). Calling it again does nothing.
func (p *Peer) Start() error {
	var err error
	p.startOnce.Do(func() {
		if err = p.start(); err == nil {
			p.negotiate <- struct{}{} // cap 1, sent once: the loop makes the first offer
		}
	})
	return err
}

func (p *Peer) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	for _, t := range []*webrtc.TrackLocalStaticSample{p.video, p.audio} {
		if t == nil {
			continue
		}
		sender, err := p.pc.AddTrack(t)
		if err != nil {
			return fmt.Errorf("mediatest: add track: %w", err)
		}
		p.wg.Add(1)
		go p.readSenderRTCP(sender)
	}
	if p.video != nil {
		p.wg.Add(1)
		go p.pumpVideo()
	}
	if p.audio != nil {
		p.wg.Add(1)
		go p.pumpAudio()
	}
	if p.video == nil && p.audio == nil {
		// Nothing to send: still offer to receive, as a viewer's browser would.
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := p.pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return fmt.Errorf("mediatest: add transceiver: %w", err)
			}
		}
	}
	return nil
}

// HandleDescription applies an offer or answer from the SFU and answers an offer. An offer
// that crosses the peer's own pending offer fails with ErrCollision (see the package comment).
func (p *Peer) HandleDescription(desc webrtc.SessionDescription) error {
	req := descriptionRequest{desc: desc, result: make(chan error, 1)}
	select {
	case p.descriptions <- req:
		return <-req.result // the loop always answers a request it has taken
	case <-p.ctx.Done():
		return ErrClosed
	}
}

// HandleCandidate adds an ICE candidate from the SFU, holding it if no description has been
// applied yet.
func (p *Peer) HandleCandidate(c webrtc.ICECandidateInit) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.mu.Unlock()
	switch p.candidates.HoldRemote(c, 0) {
	case icegate.Held:
		return nil
	case icegate.Closed:
		return ErrClosed
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		if p.closing() {
			return ErrClosed
		}
		return fmt.Errorf("mediatest: add candidate: %w", err)
	}
	return nil
}

// Close hangs up and waits for the peer's goroutines.
func (p *Peer) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.candidates.Close()
		p.cancel()
		if err := p.pc.GracefulClose(); err != nil {
			p.log.Debug("close", "err", err)
		}
		p.wg.Wait()
	})
}

// RequestKeyframe sends a PLI for every live remote video track, as a browser does when it
// cannot decode; the SFU passes it on to the publishers.
func (p *Peer) RequestKeyframe() error {
	p.mu.Lock()
	var plis []rtcp.Packet
	for _, t := range p.remote {
		if t.kind == webrtc.RTPCodecTypeVideo && !t.ended.Load() {
			plis = append(plis, &rtcp.PictureLossIndication{MediaSSRC: t.ssrc})
		}
	}
	p.mu.Unlock()
	if len(plis) == 0 {
		return nil
	}
	return p.pc.WriteRTCP(plis)
}

// SelectedCandidatePair is the ICE pair media flows over (nil before ICE connects).
func (p *Peer) SelectedCandidatePair() (*webrtc.ICECandidatePair, error) {
	for _, sender := range p.pc.GetSenders() {
		if t := sender.Transport(); t != nil {
			return t.ICETransport().GetSelectedCandidatePair()
		}
	}
	return nil, errors.New("mediatest: no transport yet")
}

// ConnectionState is the peer connection's state.
func (p *Peer) ConnectionState() webrtc.PeerConnectionState { return p.pc.ConnectionState() }

// KeyframeRequests is how many PLIs and FIRs the peer received for its camera.
func (p *Peer) KeyframeRequests() uint64 { return p.keyframeRq.Load() }

// Received reports every remote track the peer has seen, in arrival order.
func (p *Peer) Received() []TrackCount {
	p.mu.Lock()
	tracks := slices.Clone(p.remote)
	p.mu.Unlock()
	out := make([]TrackCount, 0, len(tracks))
	for _, t := range tracks {
		out = append(out, TrackCount{
			StreamID:  t.streamID,
			TrackID:   t.trackID,
			Kind:      t.kind,
			Codec:     t.codec,
			Packets:   t.packets.Load(),
			Bytes:     t.bytes.Load(),
			Keyframes: t.keyframes.Load(),
			Ended:     t.ended.Load(),
		})
	}
	return out
}

// ReceivedPackets is the number of RTP packets of a kind received on all remote tracks.
func (p *Peer) ReceivedPackets(kind webrtc.RTPCodecType) uint64 {
	return p.sum(func(t TrackCount) uint64 {
		if t.Kind == kind {
			return t.Packets
		}
		return 0
	})
}

func (p *Peer) sum(f func(TrackCount) uint64) uint64 {
	var n uint64
	for _, t := range p.Received() {
		n += f(t)
	}
	return n
}

// LiveTracks is the number of remote tracks still being received.
func (p *Peer) LiveTracks() int {
	n := 0
	for _, t := range p.Received() {
		if !t.Ended {
			n++
		}
	}
	return n
}

// WaitConnected waits until the peer connection is connected.
func (p *Peer) WaitConnected(ctx context.Context) error {
	return p.waitFor(ctx, "connected", func() bool {
		return p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
}

// WaitReceived waits until at least minPackets RTP packets of a kind have arrived, summed
// over all remote tracks.
func (p *Peer) WaitReceived(ctx context.Context, kind webrtc.RTPCodecType, minPackets uint64) error {
	return p.waitFor(ctx, fmt.Sprintf("%d %s packets", minPackets, kind), func() bool {
		return p.ReceivedPackets(kind) >= minPackets
	})
}

// WaitReceivedFrom waits until at least minPackets RTP packets of a kind have arrived from
// one publisher (its stream ID, which the SFU sets to the participant ID).
func (p *Peer) WaitReceivedFrom(ctx context.Context, streamID string, kind webrtc.RTPCodecType, minPackets uint64) error {
	return p.waitFor(ctx, fmt.Sprintf("%d %s packets from %s", minPackets, kind, streamID), func() bool {
		return p.sum(func(t TrackCount) uint64 {
			if t.StreamID == streamID && t.Kind == kind {
				return t.Packets
			}
			return 0
		}) >= minPackets
	})
}

// WaitKeyframe waits until a VP8 keyframe has arrived from a publisher.
func (p *Peer) WaitKeyframe(ctx context.Context, streamID string) error {
	return p.waitFor(ctx, "a keyframe from "+streamID, func() bool {
		return p.sum(func(t TrackCount) uint64 {
			if t.StreamID == streamID {
				return t.Keyframes
			}
			return 0
		}) > 0
	})
}

// WaitLiveTracks waits until exactly n remote tracks are being received.
func (p *Peer) WaitLiveTracks(ctx context.Context, n int) error {
	return p.waitFor(ctx, fmt.Sprintf("%d live tracks", n), func() bool { return p.LiveTracks() == n })
}

// WaitKeyframeRequests waits until the peer has received at least n PLIs or FIRs.
func (p *Peer) WaitKeyframeRequests(ctx context.Context, n uint64) error {
	return p.waitFor(ctx, fmt.Sprintf("%d keyframe requests", n), func() bool { return p.keyframeRq.Load() >= n })
}

// waitFor polls cond until it holds, ctx ends or the peer closes. Polling keeps the counters
// plain atomics: nothing on the media path has to notify anyone.
func (p *Peer) waitFor(ctx context.Context, what string, cond func() bool) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mediatest %s: waiting for %s: %w (have %s)", p.cfg.Name, what, context.Cause(ctx), p.summary())
		case <-p.ctx.Done():
			return ErrClosed
		case <-tick.C:
		}
	}
}

// summary describes what the peer has, for failure messages.
func (p *Peer) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "state %s, signaling %s, keyframe requests %d, tracks [", p.pc.ConnectionState(), p.pc.SignalingState(), p.keyframeRq.Load())
	for i, t := range p.Received() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s/%s %s %d pkts %d keyframes", t.StreamID, t.TrackID, t.Kind, t.Packets, t.Keyframes)
		if t.Ended {
			b.WriteString(" ended")
		}
	}
	b.WriteString("]")
	return b.String()
}

// loop serializes negotiation, like a browser's operations chain.
func (p *Peer) loop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case req := <-p.descriptions:
			err := p.apply(req.desc)
			if err != nil && p.closing() {
				err = ErrClosed // closed while this description was being applied
			}
			req.result <- err
		case <-p.negotiate:
			p.offer()
		}
	}
}

// offer makes the peer's one offer. A browser offers again on every negotiationneeded event;
// this peer's tracks are fixed at Start, and Pion fires such events spuriously, so it does
// not: any later offer could cross the SFU's, and Pion cannot roll back.
func (p *Peer) offer() {
	if p.offered {
		return
	}
	p.offered = true
	offer, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.log.Error("offer", "err", err)
		return
	}
	p.sendDescription(offer)
}

// closing reports whether the peer or its connection is closing: Close was called, or Pion
// closed the connection because the SFU hung up.
func (p *Peer) closing() bool {
	return p.ctx.Err() != nil ||
		p.pc.SignalingState() == webrtc.SignalingStateClosed ||
		p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed
}

func (p *Peer) apply(desc webrtc.SessionDescription) error {
	if p.closing() {
		return ErrClosed
	}
	switch desc.Type {
	case webrtc.SDPTypeOffer:
		if p.pc.SignalingState() != webrtc.SignalingStateStable {
			// A browser would roll back here; Pion cannot (see the package comment).
			return fmt.Errorf("%w: the SFU's offer crossed ours in state %s", ErrCollision, p.pc.SignalingState())
		}
		if err := p.pc.SetRemoteDescription(desc); err != nil {
			return fmt.Errorf("mediatest: apply offer: %w", err)
		}
		p.remoteDescriptionSet()
		answer, err := p.pc.CreateAnswer(nil)
		if err == nil {
			err = p.pc.SetLocalDescription(answer)
		}
		if err != nil {
			return fmt.Errorf("mediatest: answer: %w", err)
		}
		p.sendDescription(answer)
		return nil
	case webrtc.SDPTypeAnswer:
		if err := p.pc.SetRemoteDescription(desc); err != nil {
			return fmt.Errorf("mediatest: apply answer: %w", err)
		}
		p.remoteDescriptionSet()
		return nil
	default:
		return fmt.Errorf("mediatest: unexpected description type %q", desc.Type)
	}
}

func (p *Peer) sendDescription(desc webrtc.SessionDescription) {
	p.cfg.OnDescription(desc)
	for _, c := range p.candidates.LocalReady() {
		p.cfg.OnCandidate(c)
	}
}

func (p *Peer) remoteDescriptionSet() {
	for _, c := range p.candidates.RemoteReady() {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Warn("held candidate rejected", "err", err)
		}
	}
}

func (p *Peer) onLocalCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	init := c.ToJSON()
	if p.candidates.HoldLocal(init) {
		p.cfg.OnCandidate(init)
	}
}

// pumpVideo plays the clip at its frame rate, looping. After a keyframe request it restarts
// from the last keyframe, which is what a real encoder's fresh keyframe amounts to.
func (p *Peer) pumpVideo() {
	defer p.wg.Done()
	if p.synthetic != nil {
		p.pumpSynthetic()
		return
	}
	clip := p.videoClip
	tick := time.NewTicker(clip.frameDuration)
	defer tick.Stop()
	i := 0
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		if p.keyframe.Swap(false) {
			i = clip.keyframeAtOrBefore[i]
		}
		if err := p.video.WriteSample(media.Sample{Data: clip.frames[i], Duration: clip.frameDuration}); err != nil {
			p.log.Debug("write video", "err", err)
		}
		i = (i + 1) % len(clip.frames)
	}
}

// pumpSynthetic sends generated frames at the configured rate: a keyframe first and after
// every keyframe request, delta frames otherwise.
func (p *Peer) pumpSynthetic() {
	v := p.synthetic
	tick := time.NewTicker(v.frameDuration)
	defer tick.Stop()
	first := true
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		frame := v.delta
		if p.keyframe.Swap(false) || first {
			frame, first = v.key, false
		}
		if err := p.video.WriteSample(media.Sample{Data: frame, Duration: v.frameDuration}); err != nil {
			p.log.Debug("write video", "err", err)
		}
	}
}

func (p *Peer) pumpAudio() {
	defer p.wg.Done()
	tick := time.NewTicker(opusFrameDuration)
	defer tick.Stop()
	i := 0
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		if err := p.audio.WriteSample(media.Sample{Data: p.audioClip[i], Duration: opusFrameDuration}); err != nil {
			p.log.Debug("write audio", "err", err)
		}
		i = (i + 1) % len(p.audioClip)
	}
}

// readSenderRTCP drives the send-side interceptors and notices keyframe requests.
func (p *Peer) readSenderRTCP(sender *webrtc.RTPSender) {
	defer p.wg.Done()
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.keyframeRq.Add(1)
				p.keyframe.Store(true)
			}
		}
	}
}

func (p *Peer) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	t := &remoteTrack{
		streamID: remote.StreamID(),
		trackID:  remote.ID(),
		kind:     remote.Kind(),
		codec:    remote.Codec().MimeType,
		ssrc:     uint32(remote.SSRC()),
	}
	p.remote = append(p.remote, t)
	p.mu.Unlock()
	defer p.wg.Done()
	defer t.ended.Store(true)

	p.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := receiver.Read(buf); err != nil {
				return
			}
		}
	})
	vp8 := strings.EqualFold(t.codec, webrtc.MimeTypeVP8)
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		t.packets.Add(1)
		t.bytes.Add(uint64(n))
		if vp8 && pkt.Unmarshal(buf[:n]) == nil && isVP8KeyframePacket(pkt.Payload) {
			t.keyframes.Add(1)
		}
	}
}
