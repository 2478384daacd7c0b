package media

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The forwarding hot path, per packet: unmarshal into the reused packet, count, and write to
// every subscriber. One op is one packet fanned out to N subscribers; "ns/write" divides by N.
//
//	go test ./media -run '^$' -bench Forward -benchmem
//
// BenchmarkForward measures the SFU's own code: each subscriber's writer is a stub standing in
// for Pion's send path. BenchmarkForwardThroughPion writes through real, connected Pion
// connections (interceptors, SRTP, a UDP send per subscriber), so it shows what a packet
// really costs and which allocations are Pion's.

// chromeLikePacket is a VP8 RTP packet as Chrome sends it: three one-byte header extensions
// (abs-send-time, transport-wide CC, mid) and a 1100-byte payload.
func chromeLikePacket(tb testing.TB) []byte {
	tb.Helper()
	pkt := rtp.Packet{
		Header: rtp.Header{
			Version: 2, PayloadType: 96, SequenceNumber: 1000, Timestamp: 90000, SSRC: 0x1234abcd,
		},
		Payload: make([]byte, 1100),
	}
	pkt.Payload[0] = 0x10 // VP8 descriptor: start of partition 0
	for id, value := range map[uint8][]byte{2: {1, 2, 3}, 3: {0, 7}, 4: []byte("0")} {
		if err := pkt.Header.SetExtension(id, value); err != nil {
			tb.Fatal(err)
		}
	}
	raw, err := pkt.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// discardWriter stands in for Pion's send path: it accepts the packet as SRTP would.
type discardWriter struct{ packets int }

func (w *discardWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.packets++
	return h.MarshalSize() + len(payload), nil
}

func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// stubContext is what Pion hands to TrackLocal.Bind, reduced to what downTrack reads.
type stubContext struct {
	ssrc   webrtc.SSRC
	writer webrtc.TrackLocalWriter
}

func (c stubContext) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{{PayloadType: 100, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}}
}
func (c stubContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c stubContext) SSRC() webrtc.SSRC                                      { return c.ssrc }
func (c stubContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c stubContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c stubContext) WriteStream() webrtc.TrackLocalWriter                   { return c.writer }
func (c stubContext) ID() string                                             { return fmt.Sprint(c.ssrc) }
func (c stubContext) RTCPReader() interceptor.RTCPReader                     { return nil }

func benchUpTrack() *upTrack {
	return &upTrack{
		publisher:      &Peer{log: slog.New(slog.DiscardHandler)},
		id:             "camera",
		streamID:       "alice",
		kind:           webrtc.RTPCodecTypeVideo,
		codec:          webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		history:        &packetHistory{},
		keyframeWanted: make(chan struct{}, 1),
		done:           make(chan struct{}),
	}
}

// forwardOnePacket is the body of upTrack.forwardLoop after Read.
func forwardOnePacket(u *upTrack, raw []byte, pkt *rtp.Packet, seq uint16) {
	raw[2], raw[3] = byte(seq>>8), byte(seq) // a fresh sequence number, as on the wire
	if err := pkt.Unmarshal(raw); err != nil {
		panic(err)
	}
	u.packetsIn.Add(1)
	u.bytesIn.Add(uint64(len(raw)))
	u.history.add(pkt.SequenceNumber, raw)
	u.forward(pkt)
}

func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			u := benchUpTrack()
			writers := make([]*discardWriter, n)
			for i := range n {
				writers[i] = &discardWriter{}
				d := newDownTrack(u)
				if _, err := d.Bind(stubContext{ssrc: webrtc.SSRC(1000 + i), writer: writers[i]}); err != nil {
					b.Fatal(err)
				}
				u.subscribe(d)
			}
			raw := chromeLikePacket(b)
			var pkt rtp.Packet
			forwardOnePacket(u, raw, &pkt, 0) // first use sizes the reused packet's slices

			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			seq := uint16(1)
			for b.Loop() {
				forwardOnePacket(u, raw, &pkt, seq)
				seq++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/write")
			if writers[n-1].packets < b.N {
				b.Fatalf("subscriber got %d packets of %d", writers[n-1].packets, b.N)
			}
		})
	}
}

// BenchmarkForwardThroughPion compares two send paths through real Pion connections:
//
//   - "pion-default": what the SFU did before (and what a Pion SFU gets by default): every
//     connection on its own UDP socket, one sendto per copy, and Pion's default interceptors
//     (NACK responder copying every packet per subscriber, stats, reports, TWCC);
//   - "assist": the SFU as built by New: all connections on shared sockets, a packet's copies
//     sent with one sendmmsg per 64, and only the interceptors the SFU needs (NACKs are
//     answered from one history per track).
//
// Besides wall time per write it reports cpu-ns/write: the CPU time of the forwarding
// goroutine's thread (locked for the measurement), which holds up on a busy machine where
// wall time does not.
func BenchmarkForwardThroughPion(b *testing.B) {
	for _, path := range []string{"pion-default", "assist"} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("path=%s/subscribers=%d", path, n), func(b *testing.B) {
				benchmarkThroughPion(b, path, n)
			})
		}
	}
}

func benchmarkThroughPion(b *testing.B, path string, n int) {
	cfg := Config{ICELoopback: true, Logger: slog.New(slog.DiscardHandler)}
	if path == "pion-default" {
		cfg.PortMin, cfg.PortMax = 40000, 60000 // one socket per connection, as before
	}
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if path == "pion-default" {
		m, err := newMediaEngine()
		if err != nil {
			b.Fatal(err)
		}
		registry := &interceptor.Registry{}
		if err := webrtc.RegisterDefaultInterceptors(m, registry); err != nil {
			b.Fatal(err)
		}
		s.mediaEngine, s.interceptors = m, registry
	}
	u := benchUpTrack()
	u.sends = s.sends // as newUpTrack does: nil without shared sockets
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	downs := make([]*downTrack, n)
	for i := range n {
		d, closeFn := connectedDownTrack(b, s, u)
		closers = append(closers, closeFn)
		downs[i] = d
	}

	raw := chromeLikePacket(b)
	var pkt rtp.Packet
	// Write until every subscriber's transport takes packets (DTLS done).
	deadline := time.Now().Add(testTimeout)
	seq := uint16(0)
	for u.packetsOut.Load() < uint64(n) || !allFlowing(downs) {
		if time.Now().After(deadline) {
			b.Fatal("subscribers never connected")
		}
		forwardOnePacket(u, raw, &pkt, seq)
		seq++
		time.Sleep(time.Millisecond)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	before := u.packetsOut.Load()
	cpuBefore := threadCPU()
	for b.Loop() {
		forwardOnePacket(u, raw, &pkt, seq)
		seq++
	}
	cpu := threadCPU() - cpuBefore
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/write")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/write")
	if written := u.packetsOut.Load() - before; written != uint64(b.N*n) {
		b.Fatalf("wrote %d packets, want %d", written, b.N*n)
	}
}

func allFlowing(downs []*downTrack) bool {
	for _, d := range downs {
		if !d.flowing.Load() {
			return false
		}
	}
	return true
}

// connectedDownTrack negotiates one SFU-side connection carrying a downTrack of u with a
// bare Pion receiver.
func connectedDownTrack(b *testing.B, s *SFU, u *upTrack) (*downTrack, func()) {
	b.Helper()
	sender, err := s.api(slog.New(slog.DiscardHandler)).NewPeerConnection(s.pcConfig)
	if err != nil {
		b.Fatal(err)
	}
	var settings webrtc.SettingEngine
	settings.SetIncludeLoopbackCandidate(true)
	settings.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	settings.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	// The receiver runs no interceptors and reads nothing: it decrypts and drops, so that as
	// little as possible of its work lands in the benchmark's figures.
	receiver, err := webrtc.NewAPI(
		webrtc.WithSettingEngine(settings),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}),
	).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	receiver.OnTrack(func(*webrtc.TrackRemote, *webrtc.RTPReceiver) {})

	d := newDownTrack(u)
	rtpSender, err := sender.AddTrack(d)
	if err != nil {
		b.Fatal(err)
	}
	d.sender = rtpSender
	go func() {
		for {
			if _, _, err := rtpSender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	u.subscribe(d)

	// Plain offer/answer with all candidates in the SDP: no trickle needed here.
	offer, err := sender.CreateOffer(nil)
	if err != nil {
		b.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(sender)
	if err := sender.SetLocalDescription(offer); err != nil {
		b.Fatal(err)
	}
	<-gathered
	if err := receiver.SetRemoteDescription(*sender.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	answer, err := receiver.CreateAnswer(nil)
	if err != nil {
		b.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(receiver)
	if err := receiver.SetLocalDescription(answer); err != nil {
		b.Fatal(err)
	}
	<-gathered
	if err := sender.SetRemoteDescription(*receiver.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	return d, func() {
		_ = sender.GracefulClose()
		_ = receiver.GracefulClose()
	}
}
