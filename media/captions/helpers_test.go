package captions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/assist-video/assist/media/mediatest/testlog"
)

// testTimeout bounds every wait of a test.
const testTimeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger writes to the test's output while the test runs (see testlog).
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelInfo) }

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// tonePackets are real Opus packets (20 ms each) of the 440 Hz tone mediatest publishes.
func tonePackets(t testing.TB) [][]byte {
	t.Helper()
	raw, err := os.ReadFile("../mediatest/testdata/audio.ogg")
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := oggreader.NewWith(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		page, header, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, isHeader := header.HeaderType(page); isHeader || len(page) == 0 {
			continue
		}
		out = append(out, page)
	}
	return out
}

// silencePacket is what an Opus encoder in DTX sends for silence: a TOC byte (hybrid,
// fullband, 20 ms, one frame) and no frame data.
var silencePacket = []byte{0x78}

var opusCodec = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
	PayloadType:        111,
}

// mic plays a participant's microphone into a tap: speech (the tone, loud) and silence
// (DTX packets, quiet), 20 ms a packet, with the audio-level extension when extID is set.
type mic struct {
	tap interface {
		WriteRTP(string, webrtc.RTPCodecParameters, *rtp.Packet)
	}
	tone  [][]byte
	extID uint8
	ssrc  uint32
	seq   uint16
	ts    uint32
	n     int
	// realTime paces packets at 20 ms, as a browser sends them.
	realTime bool
	last     time.Time
	// slowest is the longest a WriteRTP call took.
	slowest time.Duration
}

func newMic(t testing.TB, tap interface {
	WriteRTP(string, webrtc.RTPCodecParameters, *rtp.Packet)
}, extID uint8) *mic {
	return &mic{tap: tap, tone: tonePackets(t), extID: extID, ssrc: 0x1234, seq: 100, ts: 5000}
}

func (m *mic) packet(payload []byte, level uint8) {
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: m.seq, Timestamp: m.ts, SSRC: m.ssrc}, Payload: payload}
	if m.extID != 0 {
		ext, err := rtp.AudioLevelExtension{Level: level, Voice: level < 60}.Marshal()
		if err != nil {
			panic(err)
		}
		if err := pkt.SetExtension(m.extID, ext); err != nil {
			panic(err)
		}
	}
	if m.realTime {
		if !m.last.IsZero() {
			time.Sleep(time.Until(m.last.Add(20 * time.Millisecond)))
		}
		m.last = time.Now()
	}
	start := time.Now()
	m.tap.WriteRTP("audio", opusCodec, pkt)
	m.slowest = max(m.slowest, time.Since(start))
	m.seq++
	m.ts += 960
}

// speak sends d of speech; silent sends d of silence.
func (m *mic) speak(d time.Duration) {
	for range d / (20 * time.Millisecond) {
		p := m.tone[m.n%len(m.tone)]
		m.n++
		payload := p
		if m.extID != 0 {
			// With the extension the level decides, whatever the packet size.
			m.packet(payload, 20)
		} else {
			m.packet(payload, 0)
		}
	}
}

func (m *mic) silent(d time.Duration) {
	for range d / (20 * time.Millisecond) {
		m.packet(silencePacket, 127)
	}
}

// sttRequest is what the fake transcription server received.
type sttRequest struct {
	Language, Model, Format, Auth string
	Packets                       int // Opus packets in the Ogg file
	Received                      time.Time
}

// sttAnswer is a recorded answer: a status, a body, and how long the server takes.
type sttAnswer struct {
	status int
	body   string
	delay  time.Duration
}

// whisperJSON is a whisper.cpp server's verbose_json answer (as recorded from
// whisper-server --inference-path /v1/audio/transcriptions --convert).
func whisperJSON(text, language string) string {
	b, _ := json.Marshal(map[string]any{
		"task": "transcribe", "language": language, "duration": 1.5, "text": " " + text,
		"segments": []map[string]any{{"id": 0, "text": " " + text, "start": 0.0, "end": 1.5, "temperature": 0.0,
			"avg_logprob": -0.25, "no_speech_prob": 0.01, "tokens": []int{50364, 2425, 456, 13}}},
	})
	return string(b)
}

// sttServer implements POST /v1/audio/transcriptions and checks every request is what real
// servers accept.
type sttServer struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(req sttRequest, n int) sttAnswer

	mu       sync.Mutex
	requests []sttRequest
	answered []int // request numbers in the order they were answered
}

func newSTTServer(t *testing.T, answer func(req sttRequest, n int) sttAnswer) *sttServer {
	s := &sttServer{t: t, answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sttServer) handle(w http.ResponseWriter, r *http.Request) {
	t := s.t
	if r.Method != http.MethodPost || r.URL.Path != "/v1/audio/transcriptions" {
		t.Errorf("transcription request %s %s", r.Method, r.URL.Path)
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	if err := r.ParseMultipartForm(4 << 20); err != nil {
		t.Errorf("transcription request is not multipart/form-data: %v", err)
		http.Error(w, `{"error":{"message":"bad form"}}`, http.StatusBadRequest)
		return
	}
	f, header, err := r.FormFile("file")
	if err != nil {
		t.Errorf("transcription request has no file: %v", err)
		http.Error(w, `{"error":{"message":"no file"}}`, http.StatusBadRequest)
		return
	}
	ogg, _ := io.ReadAll(f)
	_ = f.Close()
	packets, err := checkOggOpus(ogg)
	if err != nil || !strings.HasSuffix(header.Filename, ".ogg") || header.Header.Get("Content-Type") != "audio/ogg" {
		t.Errorf("transcription file %q (%s): %v", header.Filename, header.Header.Get("Content-Type"), err)
		http.Error(w, `{"error":{"message":"bad file"}}`, http.StatusBadRequest)
		return
	}
	req := sttRequest{
		Language: r.FormValue("language"), Model: r.FormValue("model"), Format: r.FormValue("response_format"),
		Auth: r.Header.Get("Authorization"), Packets: packets, Received: time.Now(),
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	n := len(s.requests)
	s.mu.Unlock()
	a := s.answer(req, n)
	if a.delay > 0 {
		select {
		case <-time.After(a.delay):
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	s.answered = append(s.answered, n)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (s *sttServer) received() []sttRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sttRequest(nil), s.requests...)
}

// checkOggOpus checks a file is Ogg/Opus (RFC 7845): Ogg pages, an OpusHead identification
// header, OpusTags, then audio; it returns the number of audio packets.
func checkOggOpus(b []byte) (int, error) {
	if !bytes.HasPrefix(b, []byte("OggS")) {
		return 0, errors.New("does not start with OggS")
	}
	r, head, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	if head.SampleRate != 48000 || head.Channels == 0 || !bytes.Contains(b[:64], []byte("OpusHead")) {
		return 0, errors.New("no OpusHead")
	}
	n := 0
	for {
		page, header, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		if _, isHeader := header.HeaderType(page); isHeader {
			continue
		}
		if len(page) > 0 {
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("no audio")
	}
	return n, nil
}

// mtRequest is a LibreTranslate request body.
type mtRequest struct {
	Q      string `json:"q"`
	Source string `json:"source"`
	Target string `json:"target"`
	Format string `json:"format"`
	APIKey string `json:"api_key"`
}

// mtServer implements LibreTranslate's POST /translate with recorded answers: key
// "source>target:text" → translation.
type mtServer struct {
	srv     *httptest.Server
	answers map[string]string

	mu       sync.Mutex
	requests []mtRequest
}

func newMTServer(t *testing.T, answers map[string]string) *mtServer {
	s := &mtServer{answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/translate" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("translate request %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"Not Found"}`)
			return
		}
		var req mtRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Format != "text" || req.Q == "" || req.Target == "" {
			t.Errorf("translate request body %+v: %v", req, err)
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"Invalid request"}`)
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		out, ok := s.answers[req.Source+">"+req.Target+":"+req.Q]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"`+req.Target+` is not supported"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"translatedText": out})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *mtServer) received() []mtRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mtRequest(nil), s.requests...)
}

// captionLog collects what a pipeline delivers.
type captionLog struct {
	mu       sync.Mutex
	captions []Caption
	at       []time.Time
}

func (l *captionLog) add(c Caption) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.captions = append(l.captions, c)
	l.at = append(l.at, time.Now())
}

func (l *captionLog) all() []Caption {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Caption(nil), l.captions...)
}

func (l *captionLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.captions)
}

// testTransport is an HTTP transport a test closes when done, so idle connections do not
// look like leaked goroutines.
func testClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// newTestPipeline builds a pipeline against the fake servers (mt may be nil).
func newTestPipeline(t *testing.T, stt *sttServer, mt *mtServer, log *captionLog, change func(*Config)) *Pipeline {
	t.Helper()
	client := testClient(t)
	tr, err := NewOpenAITranscriber(OpenAIConfig{BaseURL: stt.srv.URL, APIKey: "sk-test", Client: client})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Transcriber:    tr,
		OnCaption:      log.add,
		Logger:         testLogger(t),
		RequestTimeout: 2 * time.Second,
	}
	if mt != nil {
		lt, err := NewLibreTranslate(LibreTranslateConfig{BaseURL: mt.srv.URL, APIKey: "lt-key", Client: client})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Translator = lt
	}
	if change != nil {
		change(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func join(t *testing.T, p *Pipeline, id, lang string, extID uint8) *Speaker {
	t.Helper()
	s, err := p.Join(id, ParticipantConfig{Language: lang, AudioLevelExtensionID: extID})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// settle waits until the speaker's chunker has handled everything written so far.
func settle(t *testing.T, ctx context.Context, s *Speaker) {
	t.Helper()
	waitFor(t, ctx, "the chunker to drain its queue", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.in) == 0
	})
}
