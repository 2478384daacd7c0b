package recording

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/mediatest"
)

// The H.264 clip an h264Peer plays in a loop: 3 s of ffmpeg's testsrc, 320x180 (the SPS crops
// 192 coded lines to 180), 30 fps, one IDR at the start, SPS and PPS before it:
//
//	ffmpeg -f lavfi -i testsrc=size=320x180:rate=30 -t 3 -c:v libx264 -profile:v baseline \
//	  -preset veryfast -tune zerolatency -b:v 200k -g 1000 -x264-params scenecut=0:repeat-headers=1 \
//	  -pix_fmt yuv420p -f h264 testdata/video.h264
const (
	h264ClipPath   = "testdata/video.h264"
	h264ClipWidth  = 320
	h264ClipHeight = 180
	h264ClipFPS    = 30
	opusClipPath   = "../media/mediatest/testdata/audio.ogg" // 3 s of Opus, 20 ms per page
)

// readAnnexB splits an Annex-B H.264 stream into access units (each an Annex-B byte string
// that pion's H264 payloader packetizes: SPS and PPS go out in a STAP-A, big slices as FU-A).
// The clip has one slice per frame, so an access unit ends with each slice.
func readAnnexB(t testing.TB, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var units [][]byte
	var cur []byte
	for _, nal := range splitAnnexB(raw) {
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal...)
		if typ := nal[0] & 0x1f; typ == nalSlice || typ == nalIDR {
			units = append(units, cur)
			cur = nil
		}
	}
	if len(units) == 0 || !bytes.Contains(units[0][:min(len(units[0]), 64)], []byte{0, 0, 1, 0x67}) {
		t.Fatalf("%s does not start with an SPS", path)
	}
	return units
}

// splitAnnexB returns the NAL units of an Annex-B stream, without start codes.
func splitAnnexB(b []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				if end > start && b[end-1] == 0 {
					end-- // the zero of a 4-byte start code
				}
				nals = append(nals, b[start:end])
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		nals = append(nals, b[start:])
	}
	return nals
}

func readOpusClip(t testing.TB) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(opusClipPath)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := oggreader.NewWith(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	for {
		page, hdr, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, isHeader := hdr.HeaderType(page); isHeader || len(page) == 0 {
			continue
		}
		pkts = append(pkts, page)
	}
	return pkts
}

// h264Peer is a Pion participant publishing the H.264 clip and the Opus clip in real time,
// answering keyframe requests by restarting the clip at its IDR, as a browser encoding with
// OpenH264 (or Safari) would publish. mediatest.Peer speaks only VP8.
type h264Peer struct {
	pc       *webrtc.PeerConnection
	keyframe atomic.Bool   // a PLI or FIR arrived
	requests atomic.Uint64 // how many

	mu        sync.Mutex
	remoteSet bool
	pending   []webrtc.ICECandidateInit

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// joinH264 connects an h264Peer to the room, publishing H.264 video and Opus audio.
func joinH264(t *testing.T, room *media.Room, id string) *h264Peer {
	t.Helper()
	video := readAnnexB(t, h264ClipPath)
	audio := readOpusClip(t)

	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}}},
		PayloadType: 102,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	registry := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, registry); err != nil {
		t.Fatal(err)
	}
	var s webrtc.SettingEngine
	s.SetIncludeLoopbackCandidate(true)
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(registry), webrtc.WithSettingEngine(s))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &h264Peer{pc: pc, ctx: ctx, cancel: cancel}
	t.Cleanup(p.close)

	videoTrack, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "camera", id)
	if err != nil {
		t.Fatal(err)
	}
	audioTrack, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "microphone", id)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*webrtc.TrackLocalStaticSample{videoTrack, audioTrack} {
		sender, err := pc.AddTrack(tr)
		if err != nil {
			t.Fatal(err)
		}
		p.wg.Go(func() { p.readRTCP(sender) })
	}

	toSFU, toClient := mediatest.NewQueue(), mediatest.NewQueue()
	t.Cleanup(toClient.Stop)
	t.Cleanup(toSFU.Stop)
	var peer *media.Peer
	peer, err = room.Join(id, mediatest.Signaller{
		Description: func(d webrtc.SessionDescription) {
			toClient.Push(func() {
				if err := p.handleDescription(d, func(a webrtc.SessionDescription) {
					toSFU.Push(func() { peer.HandleDescription(a) })
				}); err != nil && ctx.Err() == nil {
					t.Logf("%s: description: %v", id, err)
				}
			})
		},
		Candidate: func(c webrtc.ICECandidateInit) {
			toClient.Push(func() { p.handleCandidate(c) })
		},
	})
	if err != nil {
		t.Fatalf("Join(%q): %v", id, err)
	}

	// One offer with every candidate in it: no trickling from this side.
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	local := *pc.LocalDescription()
	toSFU.Push(func() {
		if err := peer.HandleDescription(local); err != nil {
			t.Logf("%s: SFU HandleDescription: %v", id, err)
		}
	})

	p.wg.Go(func() { p.pumpVideo(videoTrack, video) })
	p.wg.Go(func() { p.pumpAudio(audioTrack, audio) })
	return p
}

func (p *h264Peer) handleDescription(d webrtc.SessionDescription, answer func(webrtc.SessionDescription)) error {
	if err := p.pc.SetRemoteDescription(d); err != nil {
		return err
	}
	if d.Type == webrtc.SDPTypeOffer {
		a, err := p.pc.CreateAnswer(nil)
		if err == nil {
			err = p.pc.SetLocalDescription(a)
		}
		if err != nil {
			return err
		}
		answer(a)
	}
	p.mu.Lock()
	p.remoteSet = true
	held := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, c := range held {
		p.pc.AddICECandidate(c)
	}
	return nil
}

func (p *h264Peer) handleCandidate(c webrtc.ICECandidateInit) {
	p.mu.Lock()
	if !p.remoteSet {
		p.pending = append(p.pending, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.pc.AddICECandidate(c)
}

func (p *h264Peer) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.requests.Add(1)
				p.keyframe.Store(true)
			}
		}
	}
}

// pumpVideo plays the clip in real time; a keyframe request restarts it at its IDR.
func (p *h264Peer) pumpVideo(track *webrtc.TrackLocalStaticSample, units [][]byte) {
	const frame = time.Second / h264ClipFPS
	tick := time.NewTicker(frame)
	defer tick.Stop()
	i := 0
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		if p.keyframe.Swap(false) || i == len(units) {
			i = 0
		}
		if err := track.WriteSample(pionmedia.Sample{Data: units[i], Duration: frame}); err != nil && p.ctx.Err() != nil {
			return
		}
		i++
	}
}

func (p *h264Peer) pumpAudio(track *webrtc.TrackLocalStaticSample, pkts [][]byte) {
	const frame = 20 * time.Millisecond
	tick := time.NewTicker(frame)
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(pkts) {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		if err := track.WriteSample(pionmedia.Sample{Data: pkts[i], Duration: frame}); err != nil && p.ctx.Err() != nil {
			return
		}
	}
}

// waitConnected waits until the peer connection is up.
func (p *h264Peer) waitConnected(t *testing.T, ctx context.Context) {
	t.Helper()
	waitFor(t, ctx, "the H.264 publisher to connect", func() bool {
		return p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
}

func (p *h264Peer) close() {
	p.cancel()
	p.pc.Close()
	p.wg.Wait()
}
