package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// An Echo is a connection test: a PeerConnection built like a participant's (the SFU's codecs,
// interceptors, UDP port and ICE settings, so the test takes the path a call would take) that
// sends every track it receives straight back to the sender. The browser measures round-trip
// time, jitter, loss and the bitrate it can send from its own statistics; the echo only
// carries the media. It lives for a bounded time, then closes itself.
//
// It is not in any room: it forwards nothing to anyone else, and nothing reaches it.

// Limits of an echo test.
const (
	// DefaultEchoDuration is how long an echo lasts unless EchoConfig says otherwise: enough
	// for ICE, a few seconds of measurement and a slow network's retries.
	DefaultEchoDuration = 20 * time.Second
	// MaxEchoDuration bounds EchoConfig.Duration.
	MaxEchoDuration = time.Minute
	// maxEchoTracks is how many of the browser's tracks are sent back (a camera, a microphone,
	// a shared screen, and one spare); further ones are received and dropped.
	maxEchoTracks = 4
	// echoStreamID is the stream ID (msid) of the tracks an echo sends back.
	echoStreamID = "echo"
)

// EchoConfig describes one echo test.
type EchoConfig struct {
	// Signaller carries the echo's answer and ICE candidates to the browser; required, and it
	// must not block (the same contract as a participant's).
	Signaller Signaller
	// Duration is how long the echo lasts from its creation; 0 means DefaultEchoDuration, and
	// it is at most MaxEchoDuration.
	Duration time.Duration
	// Logger receives the echo's logs and Pion's; nil means the SFU's.
	Logger *slog.Logger
}

// EchoStats is what an echo has carried.
type EchoStats struct {
	Tracks      int    // tracks received (and sent back, up to maxEchoTracks)
	PacketsIn   uint64 // RTP packets received
	PacketsBack uint64 // RTP packets sent back
}

// Echo is one running connection test. The browser makes the offer; the echo never offers.
type Echo struct {
	pc  *webrtc.PeerConnection
	sig Signaller
	log *slog.Logger

	ctx       context.Context // cancelled when the echo starts closing
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	done      chan struct{}
	duration  time.Duration
	expired   atomic.Bool

	descriptions chan descriptionRequest

	mu         sync.Mutex
	closed     bool
	candidates candidateGate
	back       map[*webrtc.RTPReceiver]*echoTrack // the track each received one goes back on

	tracks                atomic.Int64
	packetsIn, packetsOut atomic.Uint64
}

// Echo starts a connection test. It waits for the browser's offer (HandleDescription) and
// closes itself after cfg.Duration, when its connection fails, or on Close.
func (s *SFU) Echo(cfg EchoConfig) (*Echo, error) {
	if cfg.Signaller == nil {
		return nil, errors.New("media: echo: nil Signaller")
	}
	switch {
	case cfg.Duration == 0:
		cfg.Duration = DefaultEchoDuration
	case cfg.Duration < 0 || cfg.Duration > MaxEchoDuration:
		return nil, fmt.Errorf("media: echo duration %s: want up to %s", cfg.Duration, MaxEchoDuration)
	}
	log := cfg.Logger
	if log == nil {
		log = s.log
	}
	log = log.With("echo", true)

	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	pc, err := s.api(log).NewPeerConnection(s.pcConfig)
	if err != nil {
		return nil, fmt.Errorf("media: echo peer connection: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Echo{
		pc:           pc,
		sig:          cfg.Signaller,
		log:          log,
		ctx:          ctx,
		cancel:       cancel,
		done:         make(chan struct{}),
		duration:     cfg.Duration,
		descriptions: make(chan descriptionRequest),
		back:         make(map[*webrtc.RTPReceiver]*echoTrack),
	}
	pc.OnICECandidate(e.onLocalCandidate)
	pc.OnTrack(e.onTrack)
	pc.OnConnectionStateChange(e.onConnectionState)
	e.wg.Add(1)
	go e.loop()
	e.log.Info("echo started", "duration", cfg.Duration)
	return e, nil
}

// Done is closed once the echo has closed.
func (e *Echo) Done() <-chan struct{} { return e.done }

// Expired reports whether the echo closed because its time was up.
func (e *Echo) Expired() bool { return e.expired.Load() }

// Stats is what the echo has carried so far.
func (e *Echo) Stats() EchoStats {
	return EchoStats{Tracks: int(e.tracks.Load()), PacketsIn: e.packetsIn.Load(), PacketsBack: e.packetsOut.Load()}
}

// ConnectionState is the echo's PeerConnection state.
func (e *Echo) ConnectionState() webrtc.PeerConnectionState { return e.pc.ConnectionState() }

// HandleDescription answers the browser's offer. The echo never offers, so an answer is an
// error (ErrInvalidDescription).
func (e *Echo) HandleDescription(desc webrtc.SessionDescription) error {
	req := descriptionRequest{desc: desc, result: make(chan error, 1)}
	select {
	case e.descriptions <- req:
		return <-req.result
	case <-e.ctx.Done():
		return ErrClosed
	}
}

// HandleCandidate adds one of the browser's ICE candidates; those that come before the offer
// are held (at most maxPendingCandidates).
func (e *Echo) HandleCandidate(c webrtc.ICECandidateInit) error {
	if err := checkCandidate(c); err != nil {
		return err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.mu.Unlock()
	if held, err := e.candidates.holdRemote(c); held || err != nil {
		return err
	}
	if err := e.pc.AddICECandidate(c); err != nil {
		if e.ctx.Err() != nil {
			return ErrClosed
		}
		return fmt.Errorf("%w: %w", ErrInvalidCandidate, err)
	}
	return nil
}

// Close ends the test and waits for the echo's goroutines.
func (e *Echo) Close() {
	e.closeOnce.Do(e.shutdown)
	<-e.done
}

func (e *Echo) shutdown() {
	e.mu.Lock()
	e.closed = true
	e.candidates.close()
	e.mu.Unlock()
	e.cancel()
	if err := e.pc.GracefulClose(); err != nil {
		e.log.Debug("close echo", "err", err)
	}
	e.wg.Wait()
	close(e.done)
	st := e.Stats()
	e.log.Info("echo ended", "tracks", st.Tracks, "packets_in", st.PacketsIn, "packets_back", st.PacketsBack)
}

// loop applies descriptions one at a time, and ends the echo when its time is up.
func (e *Echo) loop() {
	defer e.wg.Done()
	expiry := time.NewTimer(e.duration)
	defer expiry.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-expiry.C:
			e.expired.Store(true)
			e.log.Debug("echo time is up")
			go e.Close() // not inline: Close waits for this loop
		case req := <-e.descriptions:
			err := e.answer(req.desc)
			if err != nil && e.ctx.Err() != nil {
				err = ErrClosed
			}
			req.result <- err
		}
	}
}

func (e *Echo) answer(offer webrtc.SessionDescription) error {
	if offer.Type != webrtc.SDPTypeOffer {
		return fmt.Errorf("%w: the echo only answers offers, got %q", ErrInvalidDescription, offer.Type)
	}
	if err := checkDescription(offer); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDescription, err)
	}
	if e.pc.SignalingState() != webrtc.SignalingStateStable {
		return fmt.Errorf("%w: an offer in state %s", ErrInvalidDescription, e.pc.SignalingState())
	}
	if err := e.pc.SetRemoteDescription(offer); err != nil {
		if e.pc.SignalingState() != webrtc.SignalingStateStable {
			go e.Close() // Pion cannot roll back: this connection cannot continue
		}
		return fmt.Errorf("%w: %w", ErrInvalidDescription, err)
	}
	e.remoteDescriptionSet()
	e.addReturnTracks()
	answer, err := e.pc.CreateAnswer(nil)
	if err == nil {
		err = e.pc.SetLocalDescription(answer)
	}
	if err != nil {
		go e.Close()
		return fmt.Errorf("media: echo answer: %w", err)
	}
	e.sendDescription(answer)
	return nil
}

// addReturnTracks gives every transceiver the browser offered (up to maxEchoTracks) a track
// of ours, so that the answer sends on it: what arrives on a transceiver goes back on it.
func (e *Echo) addReturnTracks() {
	e.mu.Lock()
	n := len(e.back)
	e.mu.Unlock()
	for _, t := range e.pc.GetTransceivers() {
		if n >= maxEchoTracks {
			return
		}
		kind := t.Kind()
		if t.Sender() != nil || t.Receiver() == nil || (kind != webrtc.RTPCodecTypeAudio && kind != webrtc.RTPCodecTypeVideo) {
			continue
		}
		track := &echoTrack{kind: kind, id: fmt.Sprintf("echo-%s-%d", kind, n)}
		sender, err := e.pc.AddTrack(track)
		if err != nil {
			e.log.Warn("echo: add return track", "kind", kind.String(), "err", err)
			continue
		}
		receiver := receiverOf(e.pc, sender)
		if receiver == nil {
			continue
		}
		e.mu.Lock()
		e.back[receiver] = track
		e.mu.Unlock()
		n++
		e.wg.Add(1)
		go e.readReturnRTCP(sender, track)
	}
}

func receiverOf(pc *webrtc.PeerConnection, sender *webrtc.RTPSender) *webrtc.RTPReceiver {
	for _, t := range pc.GetTransceivers() {
		if t.Sender() == sender {
			return t.Receiver()
		}
	}
	return nil
}

// readReturnRTCP drives the sender-side interceptors and passes the browser's keyframe
// requests for an echoed video track on to the browser's own sender.
func (e *Echo) readReturnRTCP(sender *webrtc.RTPSender, track *echoTrack) {
	defer e.wg.Done()
	var last time.Time
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				ssrc := track.sourceSSRC.Load()
				if ssrc == 0 || time.Since(last) < keyframeInterval {
					continue
				}
				last = time.Now()
				if err := e.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
					e.log.Debug("echo: keyframe request", "err", err)
				}
			}
		}
	}
}

// onTrack sends one received track back for as long as it lasts.
func (e *Echo) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.wg.Add(1)
	back := e.back[receiver]
	e.mu.Unlock()
	defer e.wg.Done()

	e.tracks.Add(1)
	e.wg.Go(func() { drainRTCP(receiver, nil) })
	if back != nil {
		back.sourceSSRC.Store(uint32(remote.SSRC()))
	}
	e.log.Debug("echoing", "kind", remote.Kind().String(), "codec", remote.Codec().MimeType, "back", back != nil)
	buf := make([]byte, receiveBufferSize)
	var pkt rtp.Packet
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			if errors.Is(err, io.ErrShortBuffer) {
				continue
			}
			return
		}
		e.packetsIn.Add(1)
		if back == nil || pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		if back.write(&pkt) {
			e.packetsOut.Add(1)
		}
	}
}

func (e *Echo) onConnectionState(state webrtc.PeerConnectionState) {
	e.log.Debug("echo connection state", "state", state.String())
	switch state {
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		if e.ctx.Err() == nil {
			go e.Close() // not inline: Close waits for Pion's goroutines
		}
	}
}

func (e *Echo) sendDescription(desc webrtc.SessionDescription) {
	e.sig.SendDescription(desc)
	for _, c := range e.candidates.localReady() {
		e.sig.SendCandidate(c)
	}
}

func (e *Echo) remoteDescriptionSet() {
	for _, c := range e.candidates.remoteReady() {
		if err := e.pc.AddICECandidate(c); err != nil {
			e.log.Debug("echo: held ICE candidate rejected", "err", err)
		}
	}
}

func (e *Echo) onLocalCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	init := c.ToJSON()
	if e.candidates.holdLocal(init) {
		e.sig.SendCandidate(init)
	}
}

// echoTrack is the track an echo sends one received track back on. Packets keep their
// payload type (the browser's own, negotiated on this very transceiver), sequence numbers
// and timestamps; the SSRC becomes ours and header extensions are dropped, as in forwarding.
type echoTrack struct {
	kind       webrtc.RTPCodecType
	id         string
	sourceSSRC atomic.Uint32 // the browser's SSRC of the track echoed, for keyframe requests
	binding    atomic.Pointer[binding]
}

var _ webrtc.TrackLocal = (*echoTrack)(nil)

// Bind takes the transceiver's first negotiated codec: the packets sent carry their own
// payload type, and every codec of a kind shares its clock rate (what sender reports need).
func (t *echoTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codecs := ctx.CodecParameters()
	if len(codecs) == 0 {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.binding.Store(&binding{
		contextID:   ctx.ID(),
		ssrc:        uint32(ctx.SSRC()),
		payloadType: uint8(codecs[0].PayloadType),
		writer:      ctx.WriteStream(),
	})
	return codecs[0], nil
}

// Unbind is called by Pion when the sender stops.
func (t *echoTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	if b := t.binding.Load(); b != nil && b.contextID == ctx.ID() {
		t.binding.CompareAndSwap(b, nil)
	}
	return nil
}

func (t *echoTrack) ID() string                { return t.id }
func (t *echoTrack) RID() string               { return "" }
func (t *echoTrack) StreamID() string          { return echoStreamID }
func (t *echoTrack) Kind() webrtc.RTPCodecType { return t.kind }

// write sends one packet back; false if the track is not bound (yet) or the write failed.
func (t *echoTrack) write(pkt *rtp.Packet) bool {
	b := t.binding.Load()
	if b == nil {
		return false
	}
	pkt.Header.Extension = false
	pkt.Header.Extensions = pkt.Header.Extensions[:0]
	pkt.Header.SSRC = b.ssrc
	_, err := b.writer.WriteRTP(&pkt.Header, pkt.Payload)
	return err == nil
}
