package recording

import (
	"bytes"
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
	videoMaxDelay = 400 * time.Millisecond
	audioMaxDelay = 200 * time.Millisecond
	keyframeRetry = 500 * time.Millisecond // least time between two keyframe requests
	// audioOnlyAfter is how long audio must flow without any video before the recorder
	// decides the participant has no camera and records audio alone (a participant with a
	// camera sends video within this time, so its first segment still starts at a keyframe).
	audioOnlyAfter = time.Second
	// videoGoneAfter is how long video may be silent before the recorder ends the audio and
	// video segment and carries on with audio alone (the camera was turned off).
	videoGoneAfter = 5 * time.Second
	// maxDrift is how far a track's RTP clock may fall behind its arrivals (see timeOf). The
	// recorder keeps one track's frames waiting for the other's (see interleave) a little
	// longer than that, so that tracks this far apart interleave.
	maxDrift           = time.Second
	sorterFrames       = 64
	videoTrackNumber   = 1
	audioTrackNumber   = 2
	cuesReservedBytes  = 4096
	defaultOpusSamples = 960 // 20 ms at 48 kHz
)

// videoCodec is the codec of a participant's video, or noVideo.
type videoCodec uint8

const (
	noVideo videoCodec = iota
	codecVP8
	codecH264
)

func (c videoCodec) mimeType() string {
	switch c {
	case codecVP8:
		return webrtc.MimeTypeVP8
	case codecH264:
		return webrtc.MimeTypeH264
	}
	return ""
}

// inPacket is a copy of a tapped RTP packet: the SFU reuses its own.
type inPacket struct {
	video videoCodec // noVideo for audio
	pkt   *rtp.Packet
}

// segmentDone describes a segment whose file is complete but not yet committed: it is still
// path+".part" and may not have reached the disk. commit makes it durable under its name.
type segmentDone struct {
	Segment
	path string // the final name
}

// commit syncs a closed segment file and renames it into place. It runs off the recorder's
// goroutine (see recording.commitLoop): a sync can take seconds on a busy disk, and neither
// the media nor Stop should wait for it.
func (d segmentDone) commit() error {
	f, err := os.OpenFile(d.path+".part", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(d.path+".part", d.path); err != nil {
		return err
	}
	syncDir(filepath.Dir(d.path))
	return nil
}

// Recorder writes one participant's audio and video to a series of segment files: WebM for
// VP8 (or audio alone), Matroska for H.264, each starting with a keyframe. It is a media tap:
// WriteRTP copies the packet into a queue and a goroutine of its own depacketizes and writes,
// so the SFU never waits on the disk.
type Recorder struct {
	// RequestKeyframe is called (from the recorder's goroutine) when the recorder needs a
	// keyframe: at the start, after loss, and when a segment is due to be cut.
	RequestKeyframe func()

	dir, participant string
	segmentDuration  time.Duration
	now              func() time.Time // time.Now; tests replay arrivals on a clock of their own
	log              *slog.Logger
	onSegment        func(segmentDone) // called with each closed segment, which it must commit

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
	vcodec       videoCodec    // the video being received, noVideo when none (yet, or any more)
	lastVideo    time.Duration // arrival of the last video packet on the recorder's timeline
	h264         h264Params
	pending      []frame       // audio held while deciding whether the participant has a camera
	queued       [2][]frame    // video and audio waiting to be written in time order (see interleave)
	written      time.Duration // the latest frame written to the open segment
	seg          *segmentFile
	seq          int
	needKeyframe bool
	lastKFReq    time.Time
	err          error
}

// frame is one depacketized frame waiting to be written.
type frame struct {
	at     time.Duration
	data   []byte
	key    bool          // video: a keyframe, which may start a segment
	format segmentFormat // of the segment a keyframe would start
	params []byte        // H.264: parameter sets to put before a keyframe that starts a segment
}

// Indexes of queued.
const (
	queuedVideo = 0
	queuedAudio = 1
)

// interleaveHold is how far one track may run ahead of the other before its frames are
// written without waiting for the other's: each track lags its arrivals by up to maxDrift
// (see timeOf), so audio and video can be that far apart.
const interleaveHold = maxDrift + 500*time.Millisecond

// h264Params are the latest parameter sets of an H.264 stream and what is derived from them.
type h264Params struct {
	sps, pps []byte
	config   []byte // AVCDecoderConfigurationRecord; nil until SPS and PPS are known and valid
	width    int
	height   int
}

// update takes the parameter sets of an access unit, when it carries any.
func (p *h264Params) update(au h264AccessUnit) error {
	changed := false
	if au.sps != nil && !bytes.Equal(au.sps, p.sps) {
		p.sps, changed = bytes.Clone(au.sps), true
	}
	if au.pps != nil && !bytes.Equal(au.pps, p.pps) {
		p.pps, changed = bytes.Clone(au.pps), true
	}
	if !changed || p.sps == nil || p.pps == nil {
		return nil
	}
	sps, err := parseSPS(p.sps)
	if err != nil {
		p.config = nil
		return err
	}
	p.config = avcDecoderConfig(sps, p.sps, p.pps)
	p.width, p.height = sps.width, sps.height
	return nil
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
		now:             time.Now,
		t0:              time.Now(),
		audio:           newTrackState(noVideo),
	}
}

// since is the arrival time of what is being handled on the recorder's timeline.
func (r *Recorder) since() time.Duration { return r.now().Sub(r.t0) }

// newTrackState builds the state of a video track of codec c, or of the audio track.
func newTrackState(c videoCodec) trackState {
	switch c {
	case codecVP8:
		return trackState{builder: samplebuilder.New(videoMaxLate, &codecs.VP8Packet{}, 90000,
			samplebuilder.WithMaxTimeDelay(videoMaxDelay)), clock: 90000}
	case codecH264:
		return trackState{builder: samplebuilder.New(videoMaxLate, &codecs.H264Packet{IsAVC: true}, 90000,
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
	var video videoCodec
	switch {
	case kind == "video" && strings.EqualFold(codec.MimeType, webrtc.MimeTypeVP8):
		video = codecVP8
	case kind == "video" && strings.EqualFold(codec.MimeType, webrtc.MimeTypeH264):
		video = codecH264
	case kind == "audio" && strings.EqualFold(codec.MimeType, webrtc.MimeTypeOpus):
	default:
		return // a codec the recorder does not write
	}
	select {
	case r.inbox <- inPacket{video: video, pkt: clonePacket(pkt)}:
	default:
		r.dropped.Add(1)
	}
}

// clonePacket copies what the recorder needs of a packet the SFU will reuse.
func clonePacket(pkt *rtp.Packet) *rtp.Packet {
	cp := &rtp.Packet{Header: pkt.Header, Payload: append([]byte(nil), pkt.Payload...)}
	cp.Header.CSRC = nil
	cp.Header.Extension = false
	cp.Header.Extensions = nil
	return cp
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
			t0, queued := time.Now(), len(r.inbox)
			r.drain()
			r.flush()
			if r.seg != nil {
				r.log.Debug("stopping", "segment_start", r.seg.start, "last_frame", r.seg.last,
					"now", time.Since(r.t0), "dropped", r.dropped.Load())
			}
			r.finishSegment()
			r.log.Debug("stopped", "queued", queued, "took", time.Since(t0))
			return
		case in := <-r.inbox:
			r.handle(in)
		case <-tick.C:
			if r.vcodec != noVideo && (r.needKeyframe || r.segmentDue()) {
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
	if in.video == noVideo {
		if r.audio.started && in.pkt.SSRC != r.audio.ssrc {
			r.log.Info("audio track restarted")
			r.audio = newTrackState(noVideo)
		}
		r.audio.ssrc = in.pkt.SSRC
		r.audio.builder.Push(in.pkt)
		r.popSamples(false)
		return
	}
	r.lastVideo = r.since()
	switch {
	case r.vcodec == noVideo:
		// Video begins, or comes back after the camera was off: wait for a keyframe.
		r.startVideo(in.video)
	case in.video != r.vcodec || (r.video.started && in.pkt.SSRC != r.video.ssrc):
		// The publisher reconnected or replaced its track: a new timeline, maybe a new codec.
		r.log.Info("video track restarted", "codec", in.video.mimeType())
		r.flush()
		r.finishSegment()
		r.startVideo(in.video)
	}
	r.video.ssrc = in.pkt.SSRC
	r.video.builder.Push(in.pkt)
	r.popSamples(true)
}

func (r *Recorder) startVideo(c videoCodec) {
	r.vcodec = c
	r.video = newTrackState(c)
	r.h264 = h264Params{}
	r.needKeyframe = true
	r.pending = nil // audio waits for the first keyframe
	r.requestKeyframe()
}

func (r *Recorder) popSamples(video bool) {
	t := &r.audio
	if video {
		t = &r.video
	}
	if t.builder == nil {
		return
	}
	for {
		s := t.builder.Pop()
		if s == nil {
			return
		}
		first := !t.started
		at := t.timeOf(s.PacketTimestamp, r.since())
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
	if r.video.builder != nil {
		r.video.builder.Flush()
		r.popSamples(true)
	}
	r.audio.builder.Flush()
	r.popSamples(false)
	r.interleave(true)
	r.writePending()
}

// timeOf places an RTP timestamp on the recorder's timeline: the track's first sample is
// placed at its arrival, later ones by the RTP clock, so that jitter does not show. When the
// RTP clock falls behind the arrivals by more than maxDrift (the publisher stalled, or its
// clock is slow), the track is placed at its arrival again: audio and video stay together,
// and the writer does not drop one track's frames as older than the other's.
func (t *trackState) timeOf(ts uint32, arrival time.Duration) time.Duration {
	if !t.started {
		t.started = true
		t.lastTS = ts
		t.anchorTime = arrival
		return arrival
	}
	t.ext += int64(int32(ts - t.lastTS))
	t.lastTS = ts
	at := t.anchorTime + time.Duration((t.ext-t.anchorExt)*int64(time.Second)/t.clock)
	if arrival-at > maxDrift {
		t.anchorTime, t.anchorExt = arrival, t.ext
		return arrival
	}
	return at
}

// segmentDue reports whether the open segment has run its length: a video segment is then
// cut at the next keyframe, an audio one at the next frame.
func (r *Recorder) segmentDue() bool {
	if r.seg == nil {
		return false
	}
	if r.seg.format.video == noVideo {
		return r.seg.lastAudio-r.seg.start >= r.segmentDuration
	}
	return r.seg.lastVideo-r.seg.start >= r.segmentDuration
}

func (r *Recorder) writeVideo(data []byte, at time.Duration, lost bool) {
	var key bool
	var au h264AccessUnit
	switch r.vcodec {
	case codecVP8:
		key = isVP8Keyframe(data)
	case codecH264:
		au = scanH264(data)
		if !au.valid {
			r.needKeyframe = true
			return
		}
		if err := r.h264.update(au); err != nil {
			r.log.Warn("cannot read the H.264 parameter sets", "err", err)
		}
		// A decoder can start here only with the parameter sets: in this frame or before it.
		key = au.idr && r.h264.config != nil
	default:
		return
	}
	if lost && !key {
		r.needKeyframe = true // the frame refers to data we do not have
	}
	if !key && r.needKeyframe {
		r.requestKeyframe()
		return
	}
	f := frame{at: at, data: data, key: key}
	if key {
		r.needKeyframe = false
		f.format = r.videoFormat(data)
		if r.vcodec == codecH264 && (au.sps == nil || au.pps == nil) {
			f.params = appendAVCC(appendAVCC(make([]byte, 0, 8+len(r.h264.sps)+len(r.h264.pps)), r.h264.sps), r.h264.pps)
		}
	}
	r.queued[queuedVideo] = append(r.queued[queuedVideo], f)
	r.interleave(false)
}

// interleave writes the queued audio and video in time order, so that a segment is cut at a
// keyframe only once every frame before it is in that segment and none after it: a
// participant's segments follow each other without overlapping, whatever the offset between
// its tracks. A frame waits for the other track's frames until its track runs interleaveHold
// ahead; all writes everything queued.
func (r *Recorder) interleave(all bool) {
	v, a := &r.queued[queuedVideo], &r.queued[queuedAudio]
	for len(*v) > 0 || len(*a) > 0 {
		q := v // the queue whose first frame goes next
		switch {
		case len(*v) > 0 && len(*a) > 0:
			if (*a)[0].at < (*v)[0].at {
				q = a
			}
		case len(*a) > 0:
			q = a
		}
		if !all && (len(*v) == 0 || len(*a) == 0) {
			if span := (*q)[len(*q)-1].at - (*q)[0].at; span < interleaveHold && len(*q) < 4*sorterFrames {
				return // wait for the other track
			}
		}
		f := (*q)[0]
		(*q)[0] = frame{}
		if *q = (*q)[1:]; len(*q) == 0 {
			*q = nil
		}
		if q == v {
			r.emitVideo(f)
		} else {
			r.emitAudio(f)
		}
	}
}

// emitVideo writes a video frame in time order: it starts a segment, or cuts one that is due,
// when it is a keyframe.
func (r *Recorder) emitVideo(f frame) {
	if f.key {
		// Cut only at a keyframe after everything written: segments must not overlap.
		if r.seg != nil && (r.segmentDue() || !r.seg.format.same(f.format)) {
			if f.at >= r.written {
				r.finishSegmentAt(f.at)
			} else {
				r.requestKeyframe() // the other track ran too far ahead: cut at the next one
			}
		}
		if r.seg == nil {
			if f.params != nil {
				// Each segment must decode on its own, and salvage reads the parameter sets
				// from the first frame: put them in.
				f.data = append(f.params, f.data...)
			}
			r.openSegment(f.format, f.at)
			if r.seg == nil {
				return
			}
		}
	}
	if r.seg == nil || r.seg.format.video == noVideo || f.at < r.seg.start {
		return
	}
	if r.segmentDue() {
		r.requestKeyframe()
	}
	r.writeFrame(videoTrackNumber, f.key, f.at, f.data)
}

// emitAudio writes an audio frame in time order to the open segment.
func (r *Recorder) emitAudio(f frame) {
	if r.seg != nil && r.seg.format.video == noVideo && r.segmentDue() && f.at >= r.written {
		// Audio alone while waiting for the camera's first keyframe.
		r.finishSegmentAt(f.at)
		r.openSegment(segmentFormat{}, f.at)
	}
	if r.seg == nil || f.at < r.seg.start {
		return // waiting for a keyframe: the segment starts with it
	}
	r.writeFrame(audioTrackNumber, true, f.at, f.data)
}

// writeFrame writes to the open segment.
func (r *Recorder) writeFrame(track uint64, key bool, at time.Duration, data []byte) {
	r.written = max(r.written, at)
	r.seg.write(track, key, at, data)
}

// videoFormat describes a segment starting with this keyframe.
func (r *Recorder) videoFormat(keyframe []byte) segmentFormat {
	switch r.vcodec {
	case codecVP8:
		w, h := vp8Size(keyframe)
		return segmentFormat{video: codecVP8, width: w, height: h}
	case codecH264:
		return segmentFormat{video: codecH264, width: r.h264.width, height: r.h264.height, codecPrivate: r.h264.config}
	}
	return segmentFormat{}
}

func (r *Recorder) writeAudio(data []byte, at time.Duration) {
	if r.vcodec != noVideo && r.since()-r.lastVideo > videoGoneAfter {
		// The camera went away without a new track: carry on with audio alone.
		r.log.Info("no video any more; recording audio only")
		r.interleave(true)
		if r.seg != nil && r.seg.format.video != noVideo {
			r.finishSegment()
		}
		r.vcodec = noVideo
		r.video = trackState{}
	}
	if r.vcodec != noVideo {
		r.queued[queuedAudio] = append(r.queued[queuedAudio], frame{at: at, data: data})
		r.interleave(false)
		return
	}
	if r.seg == nil {
		// No video (yet): hold the audio until it is clear none is coming.
		r.pending = append(r.pending, frame{at: at, data: data})
		if at-r.pending[0].at >= audioOnlyAfter {
			r.writePending()
		}
		return
	}
	if r.seg.format.video == noVideo && r.segmentDue() && at >= r.written {
		r.finishSegmentAt(at)
		r.openSegment(segmentFormat{}, at)
		if r.seg == nil {
			return
		}
	}
	if at < r.seg.start {
		return
	}
	r.writeFrame(audioTrackNumber, true, at, data)
}

// writePending starts an audio-only segment with the audio held so far.
func (r *Recorder) writePending() {
	if len(r.pending) == 0 || r.seg != nil || r.vcodec != noVideo {
		r.pending = nil
		return
	}
	pending := r.pending
	r.pending = nil
	r.openSegment(segmentFormat{}, pending[0].at)
	if r.seg == nil {
		return
	}
	for _, f := range pending {
		if f.at >= r.seg.start {
			r.writeFrame(audioTrackNumber, true, f.at, f.data)
		}
	}
}

func (r *Recorder) openSegment(format segmentFormat, at time.Duration) {
	r.seq++
	name := segmentFileName(r.participant, r.seq, format.ext())
	seg, err := createSegment(filepath.Join(r.dir, name), format, at)
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
		Tracks:      format.tracks(),
		ContentType: format.contentType(),
		Width:       format.width,
		Height:      format.height,
	}
	r.seg = seg
	r.written = at
	if r.seq == 1 {
		r.log.Debug("first segment", "after", at, "tracks", seg.info.Tracks)
	}
}

func (r *Recorder) finishSegment() { r.finishSegmentAt(0) }

// finishSegmentAt finishes the open segment where the next one starts, at end (0: after its
// last frame).
func (r *Recorder) finishSegmentAt(end time.Duration) {
	seg := r.seg
	if seg == nil {
		return
	}
	r.seg = nil
	seg.end = end
	done, err := seg.close()
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

// segmentFormat is what a segment file holds: the video's codec and parameters, or no video
// (audio alone). Audio is always Opus.
type segmentFormat struct {
	video         videoCodec
	width, height int
	codecPrivate  []byte // H.264: the AVCDecoderConfigurationRecord
}

// same reports whether frames of format o can go on in a segment of format f.
func (f segmentFormat) same(o segmentFormat) bool {
	return f.video == o.video && bytes.Equal(f.codecPrivate, o.codecPrivate)
}

// ext is the file name extension: Matroska for H.264 (WebM allows only VP8, VP9, AV1, Opus
// and Vorbis), WebM otherwise.
func (f segmentFormat) ext() string {
	if f.video == codecH264 {
		return extMatroska
	}
	return extWebM
}

func (f segmentFormat) contentType() string {
	switch f.video {
	case codecH264:
		return contentTypeMatroska
	case noVideo:
		return contentTypeWebMAudio
	}
	return contentTypeWebM
}

// tracks lists the MIME types of the segment's tracks, video first.
func (f segmentFormat) tracks() []string {
	if f.video == noVideo {
		return []string{webrtc.MimeTypeOpus}
	}
	return []string{f.video.mimeType(), webrtc.MimeTypeOpus}
}

// File name extensions and content types of segments.
const (
	extWebM              = ".webm"
	extMatroska          = ".mkv"
	contentTypeWebM      = "video/webm"
	contentTypeWebMAudio = "audio/webm"
	contentTypeMatroska  = "video/x-matroska"
)

// contentTypeOf guesses a segment's content type from its file name and tracks, for segments
// recovered without a journal line.
func contentTypeOf(name string, tracks []string) string {
	if strings.HasSuffix(name, extMatroska) {
		return contentTypeMatroska
	}
	if len(tracks) == 1 && strings.HasPrefix(tracks[0], "audio/") {
		return contentTypeWebMAudio
	}
	return contentTypeWebM
}

// matroskaHeader is the EBML header of H.264 segments: the same as WebM's but for the DocType.
var matroskaHeader = func() webm.EBMLHeader {
	h := *webm.DefaultEBMLHeader
	h.DocType = "matroska"
	return h
}()

// segmentFile is one WebM or Matroska file being written.
type segmentFile struct {
	path      string // final name; the file is path+".part" until finished
	format    segmentFormat
	file      *closeFile
	video     webm.BlockWriteCloser // nil for audio alone
	audio     webm.BlockWriteCloser
	start     time.Duration // recorder timeline of its first keyframe (or audio frame)
	lastVideo time.Duration
	last      time.Duration
	lastAudio time.Duration
	end       time.Duration // where the next segment starts, when it is cut for one; else 0
	size      int64
	fatal     atomic.Pointer[error]
	info      Segment
}

// closeFile records the error of the writer's final Close, which the writer itself drops.
type closeFile struct {
	*os.File
	closeErr error
}

func (f *closeFile) Close() error {
	f.closeErr = f.File.Close()
	return f.closeErr
}

func createSegment(path string, format segmentFormat, start time.Duration) (*segmentFile, error) {
	f, err := os.OpenFile(path+".part", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	seg := &segmentFile{path: path, format: format, file: &closeFile{File: f}, start: start, lastVideo: start, lastAudio: start}
	info := *webm.DefaultSegmentInfo // a copy: the writer sets its Duration
	info.MuxingApp, info.WritingApp = "assist", "assist"
	var tracks []webm.TrackEntry
	sorter, err := mkvcore.NewMultiTrackBlockSorter(mkvcore.WithMaxDelayedPackets(sorterFrames), mkvcore.WithSortRule(mkvcore.BlockSorterDropOutdated))
	if err != nil {
		f.Close()
		return nil, err
	}
	opts := []mkvcore.BlockWriterOption{
		mkvcore.WithBlockInterceptor(sorter),
		mkvcore.WithSegmentInfo(&info),
		mkvcore.WithSeekHead(true),
		mkvcore.WithCues(cuesReservedBytes),
		mkvcore.WithOnFatalHandler(func(err error) { seg.fatal.Store(&err) }),
		mkvcore.WithOnErrorHandler(func(error) {}),
	}
	if format.video != noVideo {
		t := webm.TrackEntry{
			Name: "video", TrackNumber: videoTrackNumber, TrackUID: videoTrackNumber,
			CodecID: "V_VP8", TrackType: 1,
			Video: &webm.Video{PixelWidth: uint64(format.width), PixelHeight: uint64(format.height)},
		}
		if format.video == codecH264 {
			t.CodecID, t.CodecPrivate = "V_MPEG4/ISO/AVC", format.codecPrivate
			hdr := matroskaHeader
			opts = append(opts, mkvcore.WithEBMLHeader(&hdr))
		}
		tracks = append(tracks, t)
		opts = append(opts, mkvcore.WithMinMaxClusterDuration(videoTrackNumber, 0, 0x7FFF)) // a cluster per keyframe
	} else {
		opts = append(opts, mkvcore.WithMinMaxClusterDuration(audioTrackNumber, 1000, 0x7FFF)) // a cluster a second
	}
	tracks = append(tracks, webm.TrackEntry{
		Name: "audio", TrackNumber: audioTrackNumber, TrackUID: audioTrackNumber,
		CodecID: "A_OPUS", TrackType: 2, CodecPrivate: opusHead(),
		CodecDelay: 6500000, SeekPreRoll: 80000000,
		Audio: &webm.Audio{SamplingFrequency: 48000, Channels: 2},
	})
	ws, err := webm.NewSimpleBlockWriter(seg.file, tracks, opts...)
	if err != nil {
		f.Close()
		os.Remove(path + ".part")
		return nil, err
	}
	if format.video != noVideo {
		seg.video, seg.audio = ws[0], ws[1]
	} else {
		seg.audio = ws[0]
	}
	return seg, nil
}

func (s *segmentFile) write(track uint64, key bool, at time.Duration, frame []byte) {
	ms := (at - s.start).Milliseconds()
	w := s.audio
	if track == videoTrackNumber {
		if s.video == nil {
			return
		}
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

// close finishes the file (cues and duration) and closes it, still under its .part name and
// not necessarily on the disk yet: commit the result.
func (s *segmentFile) close() (segmentDone, error) {
	if s.video != nil {
		s.video.Close()
	}
	s.audio.Close() // the last Close waits until the file is finalised and closed
	if p := s.fatal.Load(); p != nil {
		return segmentDone{}, *p
	}
	if s.file.closeErr != nil {
		return segmentDone{}, s.file.closeErr
	}
	st, err := os.Stat(s.path + ".part")
	if err != nil {
		return segmentDone{}, err
	}
	// The last frame lasts until the next segment starts, or its own length.
	end := s.last + defaultOpusSamples*time.Second/48000
	if s.end > s.last {
		end = min(end, s.end)
	}
	s.info.DurationMS = (end - s.start).Milliseconds()
	s.info.Size = st.Size()
	return segmentDone{Segment: s.info, path: s.path}, nil
}

// finish closes and commits the file.
func (s *segmentFile) finish() (segmentDone, error) {
	done, err := s.close()
	if err == nil {
		err = done.commit()
	}
	return done, err
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
