package media

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/internal/udpbatch"
)

// keyframeInterval is the least time between two keyframe requests (PLI) sent to one
// publisher's track: new subscribers and subscribers' own PLIs within it share one keyframe.
const keyframeInterval = 500 * time.Millisecond

// receiveBufferSize holds any RTP packet Pion hands over (its receive MTU is 1460).
const receiveBufferSize = 1500

// historySize is how many of a video track's latest packets the SFU keeps to answer NACKs:
// about a second of a 720p camera. A power of two.
const historySize = 512

// resendInterval is the least time between two retransmissions of one packet to one
// subscriber: a NACK repeated sooner is answered by the retransmission already on its way.
const resendInterval = 50 * time.Millisecond

// resendLimit is how many times one packet is sent again to one subscriber at most. A
// subscriber that keeps losing packets (a full socket, a congested link) keeps NACKing them;
// without a bound, retransmissions would multiply the very load that loses them.
const resendLimit = 3

// upTrack is a track a participant publishes: it reads RTP from the publisher and writes each
// packet to every subscriber's downTrack.
type upTrack struct {
	publisher *Peer
	remote    *webrtc.TrackRemote
	id        string
	streamID  string // the publisher's participant ID: subscribers see it as the msid
	kind      webrtc.RTPCodecType
	codec     webrtc.RTPCodecCapability
	mediaSSRC uint32
	params    webrtc.RTPCodecParameters // as negotiated with the publisher, for taps
	kindName  string                    // kind.String(), kept so taps get it for free

	// taps is copy-on-write like subscribers; set by the room (see tap.go).
	taps atomic.Pointer[[]Tap]

	// subscribers is copy-on-write: the forwarding loop loads it once per packet without
	// locking; subscribe and unsubscribe replace it under mu.
	mu          sync.Mutex
	subscribers atomic.Pointer[[]*downTrack]

	// sends batches the subscribers' copies of a packet into one system call; nil: no batching.
	sends *udpbatch.Group
	// history holds the latest packets of a video track, for retransmissions; nil for audio.
	history *packetHistory
	// clock maps the track's RTP timestamps to wall-clock time, for sender reports.
	clock frameClock

	keyframeWanted chan struct{} // cap 1: a keyframe request is pending
	done           chan struct{} // closed when the publisher's track has ended

	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	keyframeRequests     atomic.Uint64 // PLIs sent to the publisher
	retransmissions      atomic.Uint64 // packets sent again to subscribers that NACKed them
	// The publisher's latest sender report (see quality.go): packets it had sent << 32 |
	// packets received by then, and how many reports came.
	senderReport, senderReports atomic.Uint64
}

func newUpTrack(publisher *Peer, remote *webrtc.TrackRemote) *upTrack {
	params := remote.Codec()
	codec := params.RTPCodecCapability
	id := remote.ID()
	if id == "" {
		id = fmt.Sprintf("%s-%d", remote.Kind(), remote.SSRC())
	}
	var history *packetHistory
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		history = &packetHistory{}
	}
	return &upTrack{
		sends:          publisher.room.sfu.sends,
		history:        history,
		publisher:      publisher,
		remote:         remote,
		id:             id,
		streamID:       publisher.id,
		kind:           remote.Kind(),
		codec:          codec,
		mediaSSRC:      uint32(remote.SSRC()),
		params:         params,
		kindName:       remote.Kind().String(),
		keyframeWanted: make(chan struct{}, 1),
		done:           make(chan struct{}),
	}
}

// forwardLoop reads the publisher's RTP until the track ends. The buffer and the packet are
// reused for every packet: nothing is allocated per packet here.
func (u *upTrack) forwardLoop() {
	defer close(u.done)
	buf := make([]byte, receiveBufferSize)
	var pkt rtp.Packet
	for {
		n, _, err := u.remote.Read(buf)
		if err != nil {
			if errors.Is(err, io.ErrShortBuffer) {
				continue
			}
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		u.packetsIn.Add(1)
		u.bytesIn.Add(uint64(n))
		u.clock.observe(pkt.Timestamp)
		u.history.add(pkt.SequenceNumber, buf[:n])
		u.tap(&pkt)
		u.forward(&pkt)
	}
}

// forward writes one packet to every bound subscriber. Header extensions are dropped: their
// IDs were negotiated with the publisher, not with the subscriber (and none of them is needed
// to decode). SSRC and payload type are rewritten per subscriber; sequence numbers and
// timestamps pass through, since a downTrack only ever carries this one track.
func (u *upTrack) forward(pkt *rtp.Packet) {
	subs := u.subscribers.Load()
	if subs == nil {
		return
	}
	pkt.Header.Extension = false
	pkt.Header.Extensions = pkt.Header.Extensions[:0]
	size := uint64(pkt.MarshalSize())

	var packets uint64
	u.sends.Begin() // the copies below leave together, at End
	defer u.sends.End()
	for _, d := range *subs {
		b := d.binding.Load()
		if b == nil {
			continue // not negotiated yet, or unbound
		}
		pkt.Header.SSRC = b.ssrc
		pkt.Header.PayloadType = b.payloadType
		// An interceptor may have added its own extension to the shared header.
		pkt.Header.Extension = false
		pkt.Header.Extensions = pkt.Header.Extensions[:0]
		n, err := b.writer.WriteRTP(&pkt.Header, pkt.Payload)
		if err != nil || n == 0 {
			continue // closed, or the subscriber's transport is not up yet: dropped
		}
		d.sent.add(len(pkt.Payload))
		packets++
		if !d.flowing.Load() {
			// The first packet that really leaves for this subscriber: from here on it can
			// decode from the next keyframe, so ask for one now.
			d.flowing.Store(true)
			u.requestKeyframe()
		}
	}
	if packets > 0 {
		u.packetsOut.Add(packets)
		u.bytesOut.Add(packets * size)
	}
}

func (u *upTrack) subscribe(d *downTrack) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var next []*downTrack
	if cur := u.subscribers.Load(); cur != nil {
		next = make([]*downTrack, 0, len(*cur)+1)
		next = append(next, *cur...)
	}
	next = append(next, d)
	u.subscribers.Store(&next)
}

func (u *upTrack) unsubscribe(d *downTrack) {
	u.mu.Lock()
	defer u.mu.Unlock()
	cur := u.subscribers.Load()
	if cur == nil {
		return
	}
	next := make([]*downTrack, 0, len(*cur))
	for _, s := range *cur {
		if s != d {
			next = append(next, s)
		}
	}
	u.subscribers.Store(&next)
}

// requestKeyframe asks for a keyframe from the publisher; requests coalesce. It never blocks.
func (u *upTrack) requestKeyframe() {
	if u.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	select {
	case u.keyframeWanted <- struct{}{}:
	default:
	}
}

// rtcpWriter is where keyframe requests go: the publisher's PeerConnection.
type rtcpWriter interface {
	WriteRTCP([]rtcp.Packet) error
}

// keyframeLoop sends the publisher a PLI for each keyframe request, at most one per
// keyframeInterval; requests that arrive while it waits are answered by the next PLI.
func (u *upTrack) keyframeLoop(w rtcpWriter) {
	var last time.Time
	for {
		select {
		case <-u.done:
			return
		case <-u.keyframeWanted:
		}
		if wait := keyframeInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-u.done:
				t.Stop()
				return
			case <-t.C:
			}
		}
		select { // this PLI answers any request made while waiting
		case <-u.keyframeWanted:
		default:
		}
		last = time.Now()
		if err := w.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: u.mediaSSRC}}); err != nil {
			u.publisher.log.Debug("keyframe request failed", "track", u.id, "err", err)
			continue
		}
		u.keyframeRequests.Add(1)
	}
}

func (u *upTrack) stats() TrackStats {
	return TrackStats{
		ID:               u.id,
		Kind:             u.kind.String(),
		Codec:            u.codec.MimeType,
		PacketsReceived:  u.packetsIn.Load(),
		BytesReceived:    u.bytesIn.Load(),
		PacketsForwarded: u.packetsOut.Load(),
		BytesForwarded:   u.bytesOut.Load(),
	}
}

// binding is what negotiation fixed for one subscriber's copy of a track.
type binding struct {
	contextID   string
	ssrc        uint32
	payloadType uint8
	writer      webrtc.TrackLocalWriter
}

// downTrack is one subscriber's copy of an upTrack: a webrtc.TrackLocal with exactly one
// binding, so the forwarding loop writes to it without locks.
type downTrack struct {
	up      *upTrack
	sender  *webrtc.RTPSender // owned by the subscriber's negotiation loop
	binding atomic.Pointer[binding]
	flowing atomic.Bool // a packet has reached the subscriber's transport
	sent    sentCounts  // what its sender reports count
	// subscriber is the receiving participant's ID, set before the downTrack is published.
	subscriber string
	reception  reception // the subscriber's receiver reports (see quality.go)

	// Owned by the goroutine reading the subscriber's RTCP (Peer.readSubscriberRTCP).
	resent *[historySize]resendMark // when each recent packet was last sent again
	rtx    rtp.Packet               // reused for retransmissions
	rtxBuf []byte
}

// resendMark is when a packet was last retransmitted to one subscriber, and how often.
type resendMark struct {
	seq   uint16
	count uint8
	at    time.Time
}

// resend answers a subscriber's NACK from the track's history: each packet still held is
// sent again (SSRC and payload type rewritten as in forward), unless it was sent again less
// than resendInterval ago or resendLimit times already. Packets no longer held are not
// answered: the subscriber asks for a keyframe when it cannot recover.
func (d *downTrack) resend(nack *rtcp.TransportLayerNack) {
	h := d.up.history
	b := d.binding.Load()
	if h == nil || b == nil || nack.MediaSSRC != b.ssrc {
		return
	}
	if d.resent == nil {
		d.resent = new([historySize]resendMark)
		d.rtxBuf = make([]byte, receiveBufferSize)
	}
	now := time.Now()
	for _, pair := range nack.Nacks {
		pair.Range(func(seq uint16) bool {
			mark := &d.resent[seq%historySize]
			if mark.seq != seq || mark.at.IsZero() {
				*mark = resendMark{seq: seq}
			} else if mark.count >= resendLimit || now.Sub(mark.at) < resendInterval {
				return true
			}
			n := h.get(seq, d.rtxBuf)
			if n == 0 || d.rtx.Unmarshal(d.rtxBuf[:n]) != nil {
				return true
			}
			d.rtx.Header.Extension = false
			d.rtx.Header.Extensions = d.rtx.Header.Extensions[:0]
			d.rtx.Header.SSRC = b.ssrc
			d.rtx.Header.PayloadType = b.payloadType
			if _, err := b.writer.WriteRTP(&d.rtx.Header, d.rtx.Payload); err != nil {
				return false
			}
			d.sent.add(len(d.rtx.Payload))
			mark.count++
			mark.at = now
			d.up.retransmissions.Add(1)
			return true
		})
	}
}

// packetHistory is a video track's latest packets as the publisher sent them, one copy for
// all subscribers. The forwarding loop adds; the subscribers' RTCP readers get.
type packetHistory struct {
	mu    sync.Mutex
	slots [historySize]struct {
		seq uint16
		n   int // 0: empty
	}
	data []byte // historySize × receiveBufferSize, allocated with the first packet
}

// add keeps a copy of a packet, replacing the one historySize sequence numbers older. A nil
// history keeps nothing.
func (h *packetHistory) add(seq uint16, raw []byte) {
	if h == nil || len(raw) > receiveBufferSize {
		return
	}
	i := int(seq % historySize)
	h.mu.Lock()
	if h.data == nil {
		h.data = make([]byte, historySize*receiveBufferSize)
	}
	h.slots[i].seq = seq
	h.slots[i].n = copy(h.data[i*receiveBufferSize:(i+1)*receiveBufferSize], raw)
	h.mu.Unlock()
}

// get copies the packet with sequence number seq into buf and returns its length, or 0 if
// it is no longer held.
func (h *packetHistory) get(seq uint16, buf []byte) int {
	i := int(seq % historySize)
	h.mu.Lock()
	defer h.mu.Unlock()
	slot := h.slots[i]
	if slot.n == 0 || slot.seq != seq || h.data == nil {
		return 0
	}
	return copy(buf, h.data[i*receiveBufferSize:i*receiveBufferSize+slot.n])
}

var _ webrtc.TrackLocal = (*downTrack)(nil)

func newDownTrack(up *upTrack) *downTrack {
	return &downTrack{up: up}
}

// Bind is called by Pion once negotiation has settled the subscriber's codec for this track.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, ok := matchCodec(d.up.codec, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("%w: subscriber cannot receive %s",
			webrtc.ErrUnsupportedCodec, d.up.codec.MimeType)
	}
	d.binding.Store(&binding{
		contextID:   ctx.ID(),
		ssrc:        uint32(ctx.SSRC()),
		payloadType: uint8(codec.PayloadType),
		writer:      ctx.WriteStream(),
	})
	d.flowing.Store(false)
	return codec, nil
}

// Unbind is called by Pion when the sender stops.
func (d *downTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	if b := d.binding.Load(); b != nil && b.contextID == ctx.ID() {
		d.binding.CompareAndSwap(b, nil)
	}
	return nil
}

func (d *downTrack) ID() string                { return d.up.id }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) StreamID() string          { return d.up.streamID }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

// matchCodec picks the subscriber's codec for a publisher's: the same MIME type, and for
// H.264 preferably the same profile and packetization mode.
func matchCodec(want webrtc.RTPCodecCapability, offered []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var fallback webrtc.RTPCodecParameters
	found := false
	for _, c := range offered {
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		if !strings.EqualFold(want.MimeType, webrtc.MimeTypeH264) || sameH264Format(want.SDPFmtpLine, c.SDPFmtpLine) {
			return c, true
		}
		if !found {
			fallback, found = c, true
		}
	}
	return fallback, found
}

func sameH264Format(a, b string) bool {
	pa, pb := fmtpParams(a), fmtpParams(b)
	return pa["packetization-mode"] == pb["packetization-mode"] &&
		strings.EqualFold(pa["profile-level-id"], pb["profile-level-id"])
}

func fmtpParams(line string) map[string]string {
	params := make(map[string]string)
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		params[strings.ToLower(k)] = v
	}
	return params
}
