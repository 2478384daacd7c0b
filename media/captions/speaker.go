package captions

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// AudioLevelURI names the RFC 6464 header extension (client-to-mixer audio level) that
// browsers put on every Opus packet when it is negotiated. Its one-byte value carries the
// level in -dBov (0 is loudest, 127 silence), which is all the chunker needs to tell speech
// from silence without decoding.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

const opusClock = 48000 // Opus RTP timestamps tick at 48 kHz whatever the audio's rate

// ChunkConfig tunes how speech is cut into utterances; zero fields take the defaults.
type ChunkConfig struct {
	// SpeechLevel is the audio level (in -dBov, from the audio-level extension) at or above
	// which a packet counts as speech: 0 to 127, default 45 (-45 dBov; speech is around -20
	// to -40, a quiet room below -50).
	SpeechLevel int
	// SilenceBytes is the fallback without the extension: an Opus payload of at most this
	// many bytes is silence (DTX and comfort noise packets are a few bytes; speech at
	// browser bitrates is tens to hundreds). Default 10.
	SilenceBytes int
	// Silence ends an utterance: default 600 ms without speech.
	Silence time.Duration
	// MaxLength cuts an utterance that goes on without a pause: default 8 s.
	MaxLength time.Duration
	// MinSpeech drops an utterance with less speech than this (a cough, a click): default
	// 100 ms.
	MinSpeech time.Duration
	// PreRoll is how much audio before the first speech packet an utterance keeps, so that
	// the first syllable is not clipped: default 200 ms.
	PreRoll time.Duration
	// QueuePackets is the room between the SFU's goroutine and the chunker's: default 256
	// packets (5 s of 20 ms packets). When full, the oldest packet is dropped.
	QueuePackets int
}

func (c *ChunkConfig) setDefaults() {
	if c.SpeechLevel <= 0 || c.SpeechLevel > 127 {
		c.SpeechLevel = 45
	}
	if c.SilenceBytes <= 0 {
		c.SilenceBytes = 10
	}
	if c.Silence <= 0 {
		c.Silence = 600 * time.Millisecond
	}
	if c.MaxLength <= 0 {
		c.MaxLength = 8 * time.Second
	}
	if c.MinSpeech <= 0 {
		c.MinSpeech = 100 * time.Millisecond
	}
	if c.PreRoll <= 0 {
		c.PreRoll = 200 * time.Millisecond
	}
	if c.QueuePackets <= 0 {
		c.QueuePackets = 256
	}
}

func samples(d time.Duration) int64 { return int64(d) * opusClock / int64(time.Second) }

// tapped is a packet copied off the SFU's goroutine. Its payload buffer is reused.
type tapped struct {
	ts      uint32
	seq     uint16
	ssrc    uint32
	level   int16 // audio level in -dBov, or -1 without the extension
	payload []byte
}

// Speaker is one participant's audio on its way to captions. Its WriteRTP is a media tap
// (media.Room.AddTap takes a Speaker as is): it copies the packet into a bounded queue,
// reusing buffers, and returns. A goroutine of the speaker's own cuts utterances.
type Speaker struct {
	p   *Pipeline
	id  string
	cfg ChunkConfig
	log *slog.Logger

	extID   atomic.Uint32 // audio-level extension ID, 0 when not negotiated
	stopped atomic.Bool
	dropped atomic.Uint64

	mu    sync.Mutex
	in    []tapped // cap QueuePackets; filled by WriteRTP, a ring once full
	head  int      // index of the oldest packet in in
	spare []tapped // swapped with in by the chunker
	wake  chan struct{}

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	// Owned by the chunker goroutine.
	ssrc    uint32
	started bool
	lastTS  uint32
	now     int64 // unwrapped RTP time of the last packet, in samples
	preroll []chunkPacket
	cur     *utterance
	nextJob uint64

	// Reordering of results, guarded by rmu: results wait in done until all earlier
	// utterances are done too.
	rmu      sync.Mutex
	next     uint64
	finished map[uint64]*Caption
	seq      uint64
}

type chunkPacket struct {
	ts      uint32
	seq     uint16
	at      int64 // unwrapped RTP time, in samples
	payload []byte
}

// utterance is the chunk being collected.
type utterance struct {
	packets    []chunkPacket
	start      int64 // RTP time of the first packet
	speechEnd  int64 // RTP time where the last speech packet ends
	speech     int64 // samples of speech
	startedAt  time.Time
	endedAt    time.Time
	lastPacket time.Time
}

func newSpeaker(p *Pipeline, id string, extID uint8, cfg ChunkConfig, log *slog.Logger) *Speaker {
	s := &Speaker{
		p:        p,
		id:       id,
		cfg:      cfg,
		log:      log,
		in:       make([]tapped, 0, cfg.QueuePackets),
		spare:    make([]tapped, 0, cfg.QueuePackets),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		finished: make(map[uint64]*Caption),
	}
	s.extID.Store(uint32(extID))
	return s
}

// SetAudioLevelExtension sets the ID under which the participant's packets carry the
// audio-level extension (AudioLevelURI), as negotiated in its SDP; 0 means none, and the
// chunker falls back on packet sizes.
func (s *Speaker) SetAudioLevelExtension(id uint8) { s.extID.Store(uint32(id)) }

// Dropped is how many packets were lost because the chunker fell behind.
func (s *Speaker) Dropped() uint64 { return s.dropped.Load() }

// WriteRTP takes a copy of an Opus packet; other packets are ignored. It never blocks: when
// the queue is full the oldest packet is dropped and counted. It keeps nothing of pkt.
func (s *Speaker) WriteRTP(kind string, codec webrtc.RTPCodecParameters, pkt *rtp.Packet) {
	if kind != "audio" || !strings.EqualFold(codec.MimeType, webrtc.MimeTypeOpus) || len(pkt.Payload) == 0 || s.stopped.Load() {
		return
	}
	level := int16(-1)
	if id := uint8(s.extID.Load()); id != 0 && pkt.Extension {
		if b := pkt.GetExtension(id); len(b) > 0 {
			level = int16(b[0] & 0x7f)
		}
	}
	s.mu.Lock()
	var e *tapped
	if n := len(s.in); n < cap(s.in) {
		s.in = s.in[:n+1]
		e = &s.in[n]
	} else {
		// Full: the newest overwrites the oldest, and the queue now starts after it.
		e = &s.in[s.head]
		s.head = (s.head + 1) % n
		s.dropped.Add(1)
	}
	e.ts, e.seq, e.ssrc, e.level = pkt.Timestamp, pkt.SequenceNumber, pkt.SSRC, level
	e.payload = append(e.payload[:0], pkt.Payload...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stopChunker ends the chunker goroutine after it has sent the utterance in progress.
func (s *Speaker) stopChunker() {
	s.stopOnce.Do(func() {
		s.stopped.Store(true)
		close(s.stop)
	})
}

// run is the chunker goroutine.
func (s *Speaker) run(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.Silence / 6)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			s.drain()
			s.finish("leave")
			return
		case <-s.wake:
			s.drain()
		case now := <-tick.C:
			// Packets stopped (the microphone was muted, DTX, the publisher left): the
			// silence is on the clock, not in RTP timestamps.
			if s.cur != nil && now.Sub(s.cur.lastPacket) >= s.cfg.Silence {
				s.finish("quiet")
			}
		}
	}
}

// drain handles everything queued. The chunker wakes up as packets come, so the time it
// drains is their arrival, near enough, and the SFU's goroutine need not read the clock.
func (s *Speaker) drain() {
	now := time.Now()
	s.mu.Lock()
	batch, head := s.in, s.head
	s.in, s.spare, s.head = s.spare[:0], batch, 0
	s.mu.Unlock()
	for i := range batch {
		s.handle(&batch[(head+i)%len(batch)], now)
	}
}

func (s *Speaker) isSpeech(e *tapped) bool {
	if e.level >= 0 {
		return int(e.level) <= s.cfg.SpeechLevel
	}
	return len(e.payload) > s.cfg.SilenceBytes
}

func (s *Speaker) handle(e *tapped, arrival time.Time) {
	n := opusSamples(e.payload)
	if n == 0 {
		return // not an Opus packet
	}
	switch d := int64(int32(e.ts - s.lastTS)); {
	case !s.started || e.ssrc != s.ssrc || d > 10*opusClock || d < -10*opusClock:
		// A new stream (the publisher reconnected) or a jump in its timeline.
		s.finish("discontinuity")
		s.preroll = s.preroll[:0]
		s.started, s.ssrc, s.now = true, e.ssrc, 0
	case d <= 0:
		return // a late or repeated packet: the utterance has moved on
	default:
		s.now += d
	}
	s.lastTS = e.ts
	at := s.now
	speech := s.isSpeech(e)

	if u := s.cur; u != nil {
		switch {
		case at-u.speechEnd >= samples(s.cfg.Silence):
			s.finish("silence")
		case at+n-u.start > samples(s.cfg.MaxLength):
			s.finish("length")
		}
	}
	p := chunkPacket{ts: e.ts, seq: e.seq, at: at, payload: append([]byte(nil), e.payload...)}
	if s.cur == nil {
		if !speech {
			s.preroll = append(s.preroll, p)
			keep := 0
			for keep < len(s.preroll) && at+n-s.preroll[keep].at > samples(s.cfg.PreRoll) {
				keep++
			}
			s.preroll = append(s.preroll[:0], s.preroll[keep:]...)
			return
		}
		s.cur = &utterance{start: at, startedAt: arrival}
		if len(s.preroll) > 0 {
			s.cur.packets = append(s.cur.packets, s.preroll...)
			s.cur.start = s.preroll[0].at
			s.preroll = s.preroll[:0]
		}
	}
	u := s.cur
	u.packets = append(u.packets, p)
	u.lastPacket = arrival
	if speech {
		u.speechEnd, u.endedAt = at+n, arrival
		u.speech += n
	}
}

// finish closes the utterance in progress and sends it on, unless it holds too little speech.
func (s *Speaker) finish(why string) {
	u := s.cur
	s.cur = nil
	if u == nil {
		return
	}
	if u.speech < samples(s.cfg.MinSpeech) {
		s.log.Debug("utterance too short, dropped", "speech", time.Duration(u.speech)*time.Second/opusClock)
		return
	}
	// Trailing silence beyond what closed the utterance tells the provider nothing.
	for len(u.packets) > 0 && u.packets[len(u.packets)-1].at >= u.speechEnd+samples(s.cfg.PreRoll) {
		u.packets = u.packets[:len(u.packets)-1]
	}
	ogg, err := encodeOgg(u.packets, s.ssrc)
	if err != nil {
		s.log.Warn("cannot write an utterance as Ogg/Opus", "err", err)
		return
	}
	idx := s.nextJob
	s.nextJob++
	s.log.Debug("utterance", "why", why, "index", idx, "packets", len(u.packets), "bytes", len(ogg),
		"speech", time.Duration(u.speech)*time.Second/opusClock)
	s.p.enqueue(job{speaker: s, index: idx, ogg: ogg, startedAt: u.startedAt, endedAt: u.endedAt})
}

// encodeOgg writes packets as an Ogg/Opus file (RFC 7845) with pion's writer, which takes
// the granule positions from the packets' TOC bytes.
func encodeOgg(packets []chunkPacket, ssrc uint32) ([]byte, error) {
	var buf bytes.Buffer
	w, err := oggwriter.NewWith(&buf, opusClock, 1)
	if err != nil {
		return nil, err
	}
	var pkt rtp.Packet
	for _, p := range packets {
		pkt.Header = rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: ssrc}
		pkt.Payload = p.payload
		if err := w.WriteRTP(&pkt); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// opusSamples is the duration of an Opus packet in 48 kHz samples, read from its TOC byte
// (RFC 6716, section 3.1), or 0 when it is not a valid packet.
func opusSamples(p []byte) int64 {
	if len(p) == 0 {
		return 0
	}
	toc := p[0]
	var perFrame int64
	switch cfg := toc >> 3; {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		perFrame = []int64{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		perFrame = []int64{480, 960}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		perFrame = []int64{120, 240, 480, 960}[cfg&3]
	}
	frames := int64(1)
	switch toc & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 || p[1]&0x3f == 0 {
			return 0
		}
		frames = int64(p[1] & 0x3f)
	}
	if n := perFrame * frames; n <= 5760 {
		return n
	}
	return 0
}
