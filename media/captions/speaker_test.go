package captions

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// chunks runs a speaker outside a pipeline and collects the utterances it cuts.
type chunkRecorder struct {
	p  *Pipeline
	s  *Speaker
	ch chan job
}

func newChunkRecorder(t *testing.T, extID uint8, cfg ChunkConfig) *chunkRecorder {
	t.Helper()
	cfg.setDefaults()
	// A pipeline without workers: the test reads the utterances off its queue itself.
	p := &Pipeline{ctx: context.Background(), jobs: make(chan job, 64), log: testLogger(t)}
	r := &chunkRecorder{p: p, ch: p.jobs}
	r.s = newSpeaker(p, "alice", extID, cfg, testLogger(t))
	return r
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// cut runs the chunker on what was written and ends it; the utterances come back in order.
func (r *chunkRecorder) cut(t *testing.T) []job {
	t.Helper()
	r.s.drain()
	r.s.finish("test")
	var out []job
	for {
		select {
		case j := <-r.ch:
			out = append(out, j)
		default:
			return out
		}
	}
}

func TestChunker(t *testing.T) {
	cases := []struct {
		name  string
		extID uint8
		cfg   ChunkConfig
		play  func(m *mic)
		// want is the number of utterances and, for each, roughly how many packets.
		want []int
	}{
		{"a speech burst then silence is one utterance", 3, ChunkConfig{}, func(m *mic) {
			m.silent(time.Second)
			m.speak(500 * time.Millisecond)
			m.silent(2 * time.Second)
		}, []int{10 + 25 + 10}},
		{"two bursts apart are two utterances", 3, ChunkConfig{}, func(m *mic) {
			m.speak(500 * time.Millisecond)
			m.silent(time.Second)
			m.speak(300 * time.Millisecond)
			m.silent(time.Second)
		}, []int{25 + 10, 10 + 15 + 10}},
		{"a short pause does not cut", 3, ChunkConfig{}, func(m *mic) {
			m.speak(500 * time.Millisecond)
			m.silent(400 * time.Millisecond)
			m.speak(500 * time.Millisecond)
			m.silent(time.Second)
		}, []int{25 + 20 + 25 + 10}},
		{"silence and a click are nothing", 3, ChunkConfig{}, func(m *mic) {
			m.silent(time.Second)
			m.speak(40 * time.Millisecond)
			m.silent(time.Second)
		}, nil},
		{"speech without a pause is cut at the maximum length", 3, ChunkConfig{MaxLength: time.Second}, func(m *mic) {
			m.speak(2500 * time.Millisecond)
			m.silent(time.Second)
		}, []int{50, 50, 25 + 10}},
		{"without the extension packet sizes tell speech from silence", 0, ChunkConfig{}, func(m *mic) {
			m.silent(time.Second)
			m.speak(500 * time.Millisecond)
			m.silent(2 * time.Second)
		}, []int{10 + 25 + 10}},
		{"a gap in the packets (DTX) ends the utterance", 3, ChunkConfig{}, func(m *mic) {
			m.speak(500 * time.Millisecond)
			m.ts += 48000 // one second without packets
			m.silent(20 * time.Millisecond)
			m.speak(500 * time.Millisecond)
		}, []int{25, 1 + 25}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newChunkRecorder(t, tc.extID, tc.cfg)
			m := newMic(t, r.s, tc.extID)
			tc.play(m)
			got := r.cut(t)
			if len(got) != len(tc.want) {
				t.Fatalf("%d utterances, want %d", len(got), len(tc.want))
			}
			for i, j := range got {
				n, err := checkOggOpus(j.ogg)
				if err != nil {
					t.Fatalf("utterance %d: %v", i, err)
				}
				if n < tc.want[i]-1 || n > tc.want[i]+1 {
					t.Errorf("utterance %d has %d packets, want about %d", i, n, tc.want[i])
				}
				if j.index != uint64(i) {
					t.Errorf("utterance %d has index %d", i, j.index)
				}
				if j.endedAt.Before(j.startedAt) {
					t.Errorf("utterance %d ends before it starts", i)
				}
			}
		})
	}
}

func TestChunkerEndsAnUtteranceWhenPacketsStop(t *testing.T) {
	ctx := testContext(t)
	stt := newSTTServer(t, func(sttRequest, int) sttAnswer { return sttAnswer{status: 200, body: whisperJSON("Hi.", "english")} })
	var log captionLog
	p := newTestPipeline(t, stt, nil, &log, nil)
	s := join(t, p, "alice", "en", 3)
	m := newMic(t, s, 3)
	m.speak(500 * time.Millisecond) // and then the microphone is muted: nothing more comes
	waitFor(t, ctx, "a caption", func() bool { return log.count() == 1 })
}

func TestWriteRTPDropsTheOldestWhenFull(t *testing.T) {
	cfg := ChunkConfig{QueuePackets: 8}
	cfg.setDefaults()
	s := newSpeaker(nil, "alice", 0, cfg, testLogger(t))
	m := newMic(t, s, 0)
	m.speak(20 * 20 * time.Millisecond)
	if got := s.Dropped(); got != 12 {
		t.Errorf("Dropped = %d, want 12", got)
	}
	var seqs []uint16
	for i := range s.in {
		seqs = append(seqs, s.in[(s.head+i)%len(s.in)].seq)
	}
	if want := []uint16{112, 113, 114, 115, 116, 117, 118, 119}; !slices.Equal(seqs, want) {
		t.Errorf("queue holds %v, want the newest: %v", seqs, want)
	}
	for i := range s.in {
		for j := range i {
			if &s.in[i].payload[0] == &s.in[j].payload[0] {
				t.Fatalf("packets %d and %d share a buffer", j, i)
			}
		}
	}
}

func TestWriteRTPDoesNotAllocate(t *testing.T) {
	cfg := ChunkConfig{QueuePackets: 64}
	cfg.setDefaults()
	s := newSpeaker(nil, "alice", 3, cfg, testLogger(t))
	payload := tonePackets(t)[5]
	ext, _ := rtp.AudioLevelExtension{Level: 20, Voice: true}.Marshal()
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: payload}
	if err := pkt.SetExtension(3, ext); err != nil {
		t.Fatal(err)
	}
	for range 200 { // fill every buffer of the ring once
		s.WriteRTP("audio", opusCodec, pkt)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 960
		s.WriteRTP("audio", opusCodec, pkt)
	})
	if allocs != 0 {
		t.Errorf("WriteRTP allocates %.1f times per packet", allocs)
	}
}

func BenchmarkWriteRTP(b *testing.B) {
	cfg := ChunkConfig{}
	cfg.setDefaults()
	s := newSpeaker(nil, "alice", 3, cfg, slogDiscard())
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 90)}
	pkt.Payload[0] = 0x78
	b.ReportAllocs()
	for b.Loop() {
		pkt.Timestamp += 960
		s.WriteRTP("audio", opusCodec, pkt)
	}
}

// TestUtteranceDecodesWithFFmpeg checks the Ogg/Opus files are what ffmpeg-based servers
// (whisper.cpp's --convert, faster-whisper) decode: ffprobe sees Opus, ffmpeg decodes every
// packet without an error, and the duration is the utterance's.
func TestUtteranceDecodesWithFFmpeg(t *testing.T) {
	for _, tool := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: apt-get install ffmpeg (.ci/run installs it)", tool)
		}
	}
	r := newChunkRecorder(t, 3, ChunkConfig{})
	m := newMic(t, r.s, 3)
	m.speak(1500 * time.Millisecond)
	m.silent(time.Second)
	got := r.cut(t)
	if len(got) != 1 {
		t.Fatalf("%d utterances", len(got))
	}
	path := filepath.Join(t.TempDir(), "utterance.ogg")
	if err := os.WriteFile(path, got[0].ogg, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate:format=duration",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Streams []struct {
			CodecName  string `json:"codec_name"`
			SampleRate string `json:"sample_rate"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatal(err)
	}
	duration, _ := strconv.ParseFloat(probe.Format.Duration, 64)
	if len(probe.Streams) != 1 || probe.Streams[0].CodecName != "opus" || duration < 1.5 || duration > 1.8 {
		t.Errorf("ffprobe: %s", out)
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", path, "-ar", "16000", "-ac", "1", "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decoding: %v: %s", err, out)
	}
}
