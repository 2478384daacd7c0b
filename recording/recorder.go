package recording

import (
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// Tuning of one participant's recorder.
const (
	inboxSize    = 1024 // packets between the SFU's goroutines and the recorder's
	videoMaxLate = 256  // packets the sample builder waits for a late or lost one
	audioMaxLate = 32
	// A packet still missing after this much media time is given up (a retransmission takes
	// a round trip or two): the sample builder stops waiting, the frame is dropped and the
	// video waits for a keyframe.
	videoMaxDelay      = 400 * time.Millisecond
	audioMaxDelay      = 200 * time.Millisecond
	keyframeRetry      = 500 * time.Millisecond // least time between two keyframe requests
	videoTrackNumber   = 1
	audioTrackNumber   = 2
	cuesReservedBytes  = 4096
	defaultOpusSamples = 960 // 20 ms at 48 kHz
)

// inPacket is a copy of a tapped RTP packet: the SFU reuses its own.
type inPacket struct {
	video bool
	pkt   *rtp.Packet
}

// SegmentDone describes a finished, renamed segment file.
type segmentDone struct {
	Segment
	path string
}

// Recorder writes one participant's audio and video to a series of WebM segment files, each
// starting with a VP8 keyframe. It is a media tap: WriteRTP copies the packet into a queue and
// a goroutine of its own depacketizes and writes, so the SFU never waits on the disk.
type Recorder struct {
	// RequestKeyframe is called (from the recorder's goroutine) when the recorder needs a
	// keyframe: at the start, after loss, and when a segment is due to be cut.
	RequestKeyframe func()

	dir, participant string
	segmentDuration  time.Duration
	log              *slog.Logger
	onSegment        func(segmentDone)

	inbox   chan inPacket
	stop    chan struct{} // closed by Stop: finish the segment and end
	abort   chan struct{} // closed by abandon: end without finishing (a crash, for tests)
	done    chan struct{}
	stopped atomic.Bool
	dropped atomic.Uint64 // packets lost because the inbox was full

	stopOnce, abortOnce sync.Once

	// Owned by the run goroutine.
	t0           time.Time
	video, audio trackState
	seg          *segmentFile
	seq          int
	needKeyframe bool
	lastKFReq    time.Time
	err          error
}

// trackState maps one track's RTP timestamps to the recorder's timeline.
type trackState struct {
	builder    *samplebuilder.SampleBuilder
	ssrc       uint32
	clock      int64
	started    bool
	lastTS     uint32
	ext        int64         // unwrapped timestamp of the last sample
	anchorExt  int64         // unwrapped timestamp of the first sample
	anchorTime time.Duration // its arrival on the recorder's timeline
}

func newRecorder(dir, participant string, segmentDuration time.Duration, log *slog.Logger, onSegment func(segmentDone)) *Recorder {
	return &Recorder{
		dir:             dir,
		participant:     participant,
		segmentDuration: segmentDuration,
		log:             log,
		onSegment:       onSegment,
		inbox:           make(chan inPacket, inboxSize),
		stop:            make(chan struct{}),
		abort:           make(chan struct{}),
		done:            make(chan struct{}),
		needKeyframe:    true,
		t0:              time.Now(),
		video:           newTrackState(true),
		audio:           newTrackState(false),
	}
}

func newTrackState(video bool) trackState {
	if video {
		return trackState{builder: samplebuilder.New(videoMaxLate, &codecs.VP8Packet{}, 90000,
			samplebuilder.WithMaxTimeDelay(videoMaxDelay)), clock: 90000}
	}
	return trackState{builder: samplebuilder.New(audioMaxLate, &codecs.OpusPacket{}, 48000,
		samplebuilder.WithMaxTimeDelay(audioMaxDelay)), clock: 48000}
}

// WriteRTP implements media.Tap. It never blocks: when the recorder falls behind by a full
// queue, packets are dropped (and the next keyframe repairs the video).
func (r *Recorder) WriteRTP(kind string, codec webrtc.RTPCodecParameters, pkt *rtp.Packet) {
	if r.stopped.Load() {
		return
	}
	var video bool
	switch {
	case kind == "video" && strings.EqualFold(codec.MimeType, webrtc.MimeTypeVP8):
		video = true
	case kind == "audio" && strings.EqualFold(codec.MimeType, webrtc.MimeTypeOpus):
	default:
		return // a codec the recorder does not write
	}
	cp := &rtp.Packet{Header: pkt.Header, Payload: append([]byte(nil), pkt.Payload...)}
	cp.Header.CSRC = nil
	cp.Header.Extension = false
	cp.Header.Extensions = nil
	select {
	case r.inbox <- inPacket{video: video, pkt: cp}:
	default:
		r.dropped.Add(1)
	}
}

// run is the recorder's goroutine.
func (r *Recorder) run() {
	defer close(r.done)
	tick := time.NewTicker(keyframeRetry)
	defer tick.Stop()
	for {
		select {
		case <-r.abort:
			r.crash()
			return
		case <-r.stop:
			r.drain()
			r.flush()
			if r.seg != nil {
				r.log.Debug("stopping", "segment_start", r.seg.start, "last_frame", r.seg.last,
					"now", time.Since(r.t0), "dropped", r.dropped.Load())
			}
			r.finishSegment()
			return
		case in := <-r.inbox:
			r.handle(in)
		case <-tick.C:
			if r.needKeyframe || r.segmentDue() {
				r.requestKeyframe()
			}
		}
	}
}

// drain handles what is still queued.
func (r *Recorder) drain() {
	for {
		select {
		case in := <-r.inbox:
			r.handle(in)
		default:
			return
		}
	}
}

// requestKeyframe calls RequestKeyframe, at most once per keyframeRetry.
func (r *Recorder) requestKeyframe() {
	now := time.Now()
	if now.Sub(r.lastKFReq) < keyframeRetry {
		return
	}
	r.lastKFReq = now
	if r.RequestKeyframe != nil {
		r.RequestKeyframe()
	}
}

func (r *Recorder) handle(in inPacket) {
	t := &r.audio
	if in.video {
		t = &r.video
	}
	if t.started && in.pkt.SSRC != t.ssrc {
		// The publisher reconnected or replaced its track: a new timeline.
		r.log.Info("track restarted", "video", in.video)
		if in.video {
			r.flush()
			r.finishSegment()
			r.needKeyframe = true
			r.video = newTrackState(true)
		} else {
			r.audio = newTrackState(false)
		}
	}
	t.ssrc = in.pkt.SSRC
	t.builder.Push(in.pkt)
	r.popSamples(in.video)
}

func (r *Recorder) popSamples(video bool) {
	t := &r.audio
	if video {
		t = &r.video
	}
	for {
		s := t.builder.Pop()
		if s == nil {
			return
		}
		first := !t.started
		at := t.timeOf(s.PacketTimestamp, time.Since(r.t0))
		if !first && s.PrevDroppedPackets > 0 {
			r.log.Debug("packets lost", "video", video, "at", at, "packets", s.PrevDroppedPackets)
		}
		if video {
			r.writeVideo(s.Data, at, s.PrevDroppedPackets > 0)
		} else {
			r.writeAudio(s.Data, at)
		}
	}
}

// flush writes what the sample builders still hold.
func (r *Recorder) flush() {
	r.video.builder.Flush()
	r.popSamples(true)
	r.audio.builder.Flush()
	r.popSamples(false)
}

// timeOf places an RTP timestamp on the recorder's timeline: the track's first sample is
// placed at its arrival, later ones by the RTP clock.
func (t *trackState) timeOf(ts uint32, arrival time.Duration) time.Duration {
	if !t.started {
		t.started = true
		t.lastTS = ts
		t.anchorTime = arrival
		return arrival
	}
	t.ext += int64(int32(ts - t.lastTS))
	t.lastTS = ts
	return t.anchorTime + time.Duration((t.ext-t.anchorExt)*int64(time.Second)/t.clock)
}

func (r *Recorder) segmentDue() bool {
	return r.seg != nil && r.seg.lastVideo-r.seg.start >= r.segmentDuration
}

func (r *Recorder) writeVideo(frame []byte, at time.Duration, lost bool) {
	key := isVP8Keyframe(frame)
	if lost && !key {
		r.needKeyframe = true // the frame refers to data we do not have
	}
	if !key && r.needKeyframe {
		r.requestKeyframe()
		return
	}
	if key {
		r.needKeyframe = false
		if r.seg != nil && r.segmentDue() {
			r.finishSegment()
		}
		if r.seg == nil {
			r.openSegment(frame, at)
			if r.seg == nil {
				return
			}
		}
	}
	if r.seg == nil {
		return
	}
	if r.segmentDue() {
		r.requestKeyframe()
	}
	r.seg.write(videoTrackNumber, key, at, frame)
}

func (r *Recorder) writeAudio(frame []byte, at time.Duration) {
	if r.seg == nil || at < r.seg.start {
		return
	}
	r.seg.write(audioTrackNumber, true, at, frame)
}

func (r *Recorder) openSegment(keyframe []byte, at time.Duration) {
	w, h := vp8Size(keyframe)
	r.seq++
	name := segmentFileName(r.participant, r.seq)
	seg, err := createSegment(filepath.Join(r.dir, name), w, h, at)
	if err != nil {
		r.log.Error("cannot start a segment", "file", name, "err", err)
		r.err = err
		r.needKeyframe = true
		return
	}
	seg.info = Segment{
		Participant: r.participant,
		Seq:         r.seq,
		StartedAt:   r.t0.Add(at).UTC(),
		Tracks:      []string{webrtc.MimeTypeVP8, webrtc.MimeTypeOpus},
		Width:       w,
		Height:      h,
	}
	r.seg = seg
	if r.seq == 1 {
		r.log.Debug("first keyframe", "after", at)
	}
}

func (r *Recorder) finishSegment() {
	seg := r.seg
	if seg == nil {
		return
	}
	r.seg = nil
	done, err := seg.finish()
	if err != nil {
		r.log.Error("cannot finish a segment", "file", seg.path, "err", err)
		r.err = err
		return
	}
	if r.onSegment != nil {
		r.onSegment(done)
	}
}

// crash ends the recorder as a killed process would: the open segment stays a .part file.
func (r *Recorder) crash() {
	if r.seg != nil {
		r.seg.file.File.Close()
		r.seg = nil
	}
}

// Stop finishes the open segment and waits for the recorder's goroutine.
func (r *Recorder) Stop() error {
	r.stopped.Store(true)
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	return r.err
}

// abandon ends the recorder without finishing its segment, like a crash.
func (r *Recorder) abandon() {
	r.stopped.Store(true)
	r.abortOnce.Do(func() { close(r.abort) })
	<-r.done
}

// segmentFile is one WebM file being written.
type segmentFile struct {
	path      string // final name; the file is path+".part" until finished
	file      *syncFile
	video     webm.BlockWriteCloser
	audio     webm.BlockWriteCloser
	start     time.Duration // recorder timeline of its first keyframe
	lastVideo time.Duration
	last      time.Duration
	lastAudio time.Duration
	size      int64
	fatal     atomic.Pointer[error]
	info      Segment
}

// syncFile makes the WebM writer's final Close reach the disk before the rename.
type syncFile struct {
	*os.File
	closeErr error
}

func (f *syncFile) Close() error {
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	f.closeErr = err
	return err
}

func createSegment(path string, width, height int, start time.Duration) (*segmentFile, error) {
	f, err := os.OpenFile(path+".part", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	seg := &segmentFile{path: path, file: &syncFile{File: f}, start: start, lastVideo: start}
	info := *webm.DefaultSegmentInfo // a copy: the writer sets its Duration
	info.MuxingApp, info.WritingApp = "assist", "assist"
	ws, err := webm.NewSimpleBlockWriter(seg.file, []webm.TrackEntry{
		{
			Name: "video", TrackNumber: videoTrackNumber, TrackUID: videoTrackNumber,
			CodecID: "V_VP8", TrackType: 1,
			Video: &webm.Video{PixelWidth: uint64(width), PixelHeight: uint64(height)},
		},
		{
			Name: "audio", TrackNumber: audioTrackNumber, TrackUID: audioTrackNumber,
			CodecID: "A_OPUS", TrackType: 2, CodecPrivate: opusHead(),
			CodecDelay: 6500000, SeekPreRoll: 80000000,
			Audio: &webm.Audio{SamplingFrequency: 48000, Channels: 2},
		},
	},
		mkvcore.WithSegmentInfo(&info),
		mkvcore.WithSeekHead(true),
		mkvcore.WithCues(cuesReservedBytes),
		mkvcore.WithMinMaxClusterDuration(videoTrackNumber, 0, 0x7FFF), // a cluster per keyframe
		mkvcore.WithOnFatalHandler(func(err error) { seg.fatal.Store(&err) }),
		mkvcore.WithOnErrorHandler(func(error) {}),
	)
	if err != nil {
		f.Close()
		os.Remove(path + ".part")
		return nil, err
	}
	seg.video, seg.audio = ws[0], ws[1]
	return seg, nil
}

func (s *segmentFile) write(track uint64, key bool, at time.Duration, frame []byte) {
	ms := (at - s.start).Milliseconds()
	w := s.audio
	if track == videoTrackNumber {
		w = s.video
		s.lastVideo = max(s.lastVideo, at)
	} else {
		s.lastAudio = max(s.lastAudio, at)
	}
	s.last = max(s.last, at)
	s.size += int64(len(frame))
	if _, err := w.Write(key, ms, frame); err != nil {
		s.fatal.Store(&err)
	}
}

// finish closes the WebM (writing cues and duration), syncs it and renames it into place.
func (s *segmentFile) finish() (segmentDone, error) {
	s.video.Close()
	s.audio.Close() // the last Close waits until the file is finalised and closed
	if p := s.fatal.Load(); p != nil {
		return segmentDone{}, *p
	}
	if s.file.closeErr != nil {
		return segmentDone{}, s.file.closeErr
	}
	if err := os.Rename(s.path+".part", s.path); err != nil {
		return segmentDone{}, err
	}
	syncDir(filepath.Dir(s.path))
	st, err := os.Stat(s.path)
	if err != nil {
		return segmentDone{}, err
	}
	s.info.DurationMS = (s.last - s.start + defaultOpusSamples*time.Second/48000).Milliseconds()
	s.info.Size = st.Size()
	return segmentDone{Segment: s.info, path: s.path}, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// opusHead is the Opus identification header WebM carries as CodecPrivate (RFC 7845, 5.1).
func opusHead() []byte {
	b := make([]byte, 19)
	copy(b, "OpusHead")
	b[8] = 1 // version
	b[9] = 2 // channels
	binary.LittleEndian.PutUint16(b[10:], 312)
	binary.LittleEndian.PutUint32(b[12:], 48000)
	return b
}

// isVP8Keyframe reads the frame tag of a VP8 frame (RFC 6386, 9.1).
func isVP8Keyframe(frame []byte) bool {
	return len(frame) >= 10 && frame[0]&0x01 == 0
}

// vp8Size reads the dimensions from a keyframe's header (RFC 6386, 9.1).
func vp8Size(frame []byte) (w, h int) {
	if len(frame) < 10 {
		return 0, 0
	}
	return int(binary.LittleEndian.Uint16(frame[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(frame[8:]) & 0x3fff)
}
