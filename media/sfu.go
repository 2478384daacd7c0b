// Package media is Assist's selective forwarding unit (SFU): one Pion PeerConnection per
// participant, RTP forwarded between the participants of a room without decoding, RTCP
// (keyframe requests, NACK, reports) handled per track, and per-track counters for metrics.
//
// Negotiation is "perfect negotiation" with the SFU as the impolite side: the browser sends
// the first offer, the SFU answers it, and from then on the SFU offers whenever the set of
// tracks it forwards to that participant changes. A browser offer that collides with a pending
// SFU offer is ignored; the polite browser rolls back and answers.
//
// Every forwarded track reaches a subscriber with the publishing participant's ID as its
// stream ID (msid), so a browser can tell whose camera and microphone a track carries from
// MediaStream.id. The track ID is the publisher's own track ID.
//
// Simulcast and RTX are not negotiated: each participant sends one encoding per track, and
// lost packets are retransmitted in band (NACK). RTP header extensions are not forwarded; none
// that carries picture data is negotiated (no video-orientation, so phones rotate frames
// before encoding).
package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/internal/pionlog"
	"github.com/assist-video/assist/media/internal/udpbatch"
)

// Errors returned by the SFU. Callers match them with errors.Is.
var (
	// ErrClosed: the SFU, the room or the peer has been closed.
	ErrClosed = errors.New("media: closed")
	// ErrInvalidDescription: an SDP that cannot be applied (bad type, bad SDP, an answer when
	// no offer is pending).
	ErrInvalidDescription = errors.New("media: invalid session description")
	// ErrInvalidCandidate: an ICE candidate that cannot be parsed or applied.
	ErrInvalidCandidate = errors.New("media: invalid ICE candidate")
	// ErrTooManyCandidates: more candidates arrived before the remote description than the
	// SFU is willing to hold.
	ErrTooManyCandidates = errors.New("media: too many ICE candidates before the description")
)

// Config is how the SFU talks to the network. The zero value is usable: ephemeral UDP ports
// on every interface, no loopback, no STUN.
type Config struct {
	// ICELoopback gathers loopback candidates too; hermetic tests on 127.0.0.1 need it.
	ICELoopback bool
	// UDPPort > 0 carries all ICE traffic of all participants on this one UDP port (a mux,
	// one socket per local address). 0 does the same on a port the kernel picks, unless
	// PortMin and PortMax are set. Sharing sockets is what lets the SFU send a packet's
	// copies for all subscribers with one system call (see media/internal/udpbatch).
	UDPPort int
	// PortMin and PortMax, when UDPPort is 0, give every connection its own ephemeral port
	// in this range instead (sent one datagram per system call); 0, 0 means one shared port.
	PortMin, PortMax uint16
	// NAT1To1IPs are public IPs advertised in host candidates instead of the local ones, for a
	// server behind 1:1 NAT (cloud VMs with an elastic IP).
	NAT1To1IPs []string
	// ICEServers are the STUN/TURN servers the SFU itself uses; usually none.
	ICEServers []webrtc.ICEServer
	// ICETCPAddr, when set, also offers media over TCP (RFC 6544 passive candidates on this
	// listen address, e.g. "0.0.0.0:3479") for networks that block UDP but let TCP out.
	ICETCPAddr string
	// Logger receives the SFU's logs and Pion's; nil means slog.Default().
	Logger *slog.Logger
}

// SFU owns the rooms and everything they share: the codec set, the interceptors and the
// network settings (and the UDP mux when there is one).
type SFU struct {
	log          *slog.Logger
	mediaEngine  *webrtc.MediaEngine
	interceptors *interceptor.Registry
	settings     webrtc.SettingEngine
	pcConfig     webrtc.Configuration
	udpMux       *ice.MultiUDPMuxDefault
	tcpMux       ice.TCPMux // nil without ICE-TCP
	tcpAddr      net.Addr
	sends        *udpbatch.Group // batches the mux's writes; nil without a mux

	peers atomic.Int64

	mu     sync.Mutex
	closed bool
	rooms  map[string]*Room
}

// New builds an SFU from cfg. With cfg.UDPPort set it listens on that port right away.
func New(cfg Config) (*SFU, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "media")

	if cfg.UDPPort < 0 || cfg.UDPPort > 65535 {
		return nil, fmt.Errorf("media: UDPPort %d out of range", cfg.UDPPort)
	}
	if cfg.UDPPort > 0 && (cfg.PortMin != 0 || cfg.PortMax != 0) {
		return nil, errors.New("media: PortMin/PortMax apply only when UDPPort is 0")
	}
	if cfg.PortMin > cfg.PortMax {
		return nil, fmt.Errorf("media: PortMin %d above PortMax %d", cfg.PortMin, cfg.PortMax)
	}
	for _, ip := range cfg.NAT1To1IPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("media: NAT1To1IPs: %w", err)
		}
	}

	mediaEngine, err := newMediaEngine()
	if err != nil {
		return nil, err
	}
	interceptors := &interceptor.Registry{}
	if err := registerInterceptors(mediaEngine, interceptors, pionlog.Factory{Logger: log}); err != nil {
		return nil, fmt.Errorf("media: interceptors: %w", err)
	}

	s := &SFU{
		log:          log,
		mediaEngine:  mediaEngine,
		interceptors: interceptors,
		pcConfig: webrtc.Configuration{
			ICEServers:   cfg.ICEServers,
			BundlePolicy: webrtc.BundlePolicyMaxBundle,
		},
		rooms: make(map[string]*Room),
	}

	s.settings.SetIncludeLoopbackCandidate(cfg.ICELoopback)
	if err := setSRTPPreference(&s.settings); err != nil {
		return nil, err
	}
	if len(cfg.NAT1To1IPs) > 0 {
		err := s.settings.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.NAT1To1IPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		})
		if err != nil {
			return nil, fmt.Errorf("media: NAT1To1IPs: %w", err)
		}
	}
	if cfg.ICETCPAddr != "" {
		if err := s.listenICETCP(cfg.ICETCPAddr); err != nil {
			return nil, err
		}
	}
	if cfg.PortMax > 0 {
		if err := s.settings.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, fmt.Errorf("media: port range: %w", err)
		}
		return s, nil
	}
	s.sends = udpbatch.NewGroup()
	network, err := udpbatch.NewNet(s.sends)
	if err != nil {
		return nil, fmt.Errorf("media: network: %w", err)
	}
	opts := []ice.UDPMuxFromPortOption{
		ice.UDPMuxFromPortWithLogger(pionlog.Factory{Logger: log}.NewLogger("udpmux")),
		ice.UDPMuxFromPortWithNet(network),
		// One socket carries everyone: room for bursts (the kernel caps these at
		// net.core.rmem_max and wmem_max).
		ice.UDPMuxFromPortWithReadBufferSize(socketBufferSize),
		ice.UDPMuxFromPortWithWriteBufferSize(socketBufferSize),
	}
	if cfg.ICELoopback {
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
	if err != nil {
		return nil, fmt.Errorf("media: listen on UDP port %d: %w", cfg.UDPPort, err)
	}
	s.udpMux = mux
	s.settings.SetICEUDPMux(mux)
	return s, nil
}

// AudioLevelURI names the RFC 6464 header extension (client-to-mixer audio level) the SFU
// negotiates on audio.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// socketBufferSize is the send and receive buffer asked for on each shared UDP socket.
const socketBufferSize = 4 << 20

// registerInterceptors sets up what Pion runs on every packet and RTCP report. It is Pion's
// default set (webrtc.RegisterDefaultInterceptors) minus three that cost on every packet sent
// to every subscriber: the stats interceptor (nothing reads Pion's GetStats; the SFU counts
// per track itself), the NACK responder, which keeps its own copy of every packet for every
// subscriber, and the sender-report interceptor, which locks and reads the clock for every
// copy. The SFU answers NACKs itself from one copy per track (see upTrack.history) and
// writes sender reports itself (senderreport.go). What remains: NACK generation towards
// publishers, receiver reports, and transport-wide congestion control feedback to
// publishers.
func registerInterceptors(m *webrtc.MediaEngine, r *interceptor.Registry, logs logging.LoggerFactory) error {
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	generator, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(logs))
	if err != nil {
		return err
	}
	r.Add(generator)
	receiverReports, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(logs))
	if err != nil {
		return err
	}
	r.Add(receiverReports)
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return err
	}
	return webrtc.ConfigureTWCCSenderWithOptions(m, r, twcc.WithLoggerFactory(logs))
}

// newMediaEngine registers the codecs the SFU forwards: Opus, VP8 and constrained-baseline /
// baseline H.264 with packetization-mode 1 (what Safari and OpenH264 send). Forwarding does
// not transcode, so publisher and subscriber must agree on one of these.
func newMediaEngine() (*webrtc.MediaEngine, error) {
	// nack, nack pli and transport-cc feedback are added by RegisterDefaultInterceptors.
	videoFeedback := []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}}
	codecs := []struct {
		kind   webrtc.RTPCodecType
		params webrtc.RTPCodecParameters
	}{
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{
			PayloadType: 111,
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
				SDPFmtpLine: "minptime=10;useinbandfec=1",
			},
		}},
		{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{
			PayloadType: 96,
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback,
			},
		}},
		{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{
			PayloadType: 102,
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			},
		}},
		{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{
			PayloadType: 104,
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
			},
		}},
	}
	m := &webrtc.MediaEngine{}
	for _, c := range codecs {
		if err := m.RegisterCodec(c.params, c.kind); err != nil {
			return nil, fmt.Errorf("media: register %s: %w", c.params.MimeType, err)
		}
	}
	// Each Opus packet's audio level lets taps (captions) tell speech from silence without
	// decoding; the ID is the publisher's, from its SDP (AudioLevelExtensionID). Forwarding
	// drops it like every extension.
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("media: register %s: %w", AudioLevelURI, err)
	}
	return m, nil
}

// api builds the Pion API for one participant: the SFU's shared codecs, interceptors and
// network settings, with Pion's own logs tagged with the participant's fields.
func (s *SFU) api(log *slog.Logger) *webrtc.API {
	settings := s.settings
	settings.LoggerFactory = pionlog.Factory{Logger: log}
	return webrtc.NewAPI(
		webrtc.WithMediaEngine(s.mediaEngine),
		webrtc.WithInterceptorRegistry(s.interceptors),
		webrtc.WithSettingEngine(settings),
	)
}

// Room returns the room for a session, creating it on first use. After Close it returns a
// closed room whose Join fails with ErrClosed.
func (s *SFU) Room(sessionID string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		r := newRoom(s, sessionID)
		r.closed = true
		return r
	}
	r, ok := s.rooms[sessionID]
	if !ok {
		r = newRoom(s, sessionID)
		s.rooms[sessionID] = r
	}
	return r
}

// CloseRoom closes the session's room and every peer in it. A later Room call for the same
// session starts a fresh room.
func (s *SFU) CloseRoom(sessionID string) {
	s.mu.Lock()
	r := s.rooms[sessionID]
	delete(s.rooms, sessionID)
	s.mu.Unlock()
	if r != nil {
		r.close()
	}
}

// Close closes every room and peer and releases the UDP port. It waits until their
// goroutines have ended.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rooms := s.rooms
	s.rooms = nil
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, r := range rooms {
		wg.Go(r.close)
	}
	wg.Wait()
	if s.tcpMux != nil {
		if err := s.tcpMux.Close(); err != nil {
			return fmt.Errorf("media: close ICE-TCP mux: %w", err)
		}
	}
	if s.udpMux != nil {
		if err := s.udpMux.Close(); err != nil {
			return fmt.Errorf("media: close UDP mux: %w", err)
		}
	}
	return nil
}

// listenICETCP accepts ICE over TCP on addr, next to UDP: browsers behind firewalls that drop
// UDP connect to these passive candidates with their active ones.
func (s *SFU) listenICETCP(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("media: listen for ICE over TCP on %s: %w", addr, err)
	}
	s.tcpAddr = ln.Addr()
	s.tcpMux = webrtc.NewICETCPMux(pionlog.Factory{Logger: s.log}.NewLogger("tcpmux"), ln, 8)
	s.settings.SetICETCPMux(s.tcpMux)
	s.settings.SetNetworkTypes([]webrtc.NetworkType{
		webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6,
	})
	return nil
}

// ICETCPAddr is where ICE over TCP listens, or nil without it.
func (s *SFU) ICETCPAddr() net.Addr {
	return s.tcpAddr
}

// Rooms is the number of open rooms.
func (s *SFU) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// Peers is the number of open peers in all rooms.
func (s *SFU) Peers() int {
	return int(s.peers.Load())
}
