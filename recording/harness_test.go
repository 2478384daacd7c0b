package recording

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/recording/store"
)

// testTimeout bounds every wait of a test.
const testTimeout = 90 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger writes to the test's output while the test runs and drops what goroutines log
// after it has ended. ASSIST_TEST_LOG=debug shows debug logs.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.stop)
	level := slog.LevelWarn
	if os.Getenv("ASSIST_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu      sync.Mutex
	w       io.Writer
	stopped bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return len(b), nil
	}
	return w.w.Write(b)
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// call is an SFU room with two mediatest participants publishing real VP8 and Opus.
type call struct {
	room   *media.Room
	people []*mediatest.Peer
}

func startCall(t *testing.T, ctx context.Context, session string, ids ...string) *call {
	t.Helper()
	sfu, err := media.New(media.Config{ICELoopback: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("media.New: %v", err)
	}
	t.Cleanup(func() { sfu.Close() })
	c := &call{room: sfu.Room(session)}
	for _, id := range ids {
		c.people = append(c.people, join(t, c.room, id))
	}
	// Everyone receives everyone else's audio and video: media flows through the SFU.
	for i, p := range c.people {
		for j, id := range ids {
			if i == j {
				continue
			}
			for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
				if err := p.WaitReceivedFrom(ctx, id, kind, 20); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return c
}

// queue delivers signalling messages in order on its own goroutine, like a WebSocket writer.
type queue struct {
	mu    sync.Mutex
	items []func()
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

func newQueue() *queue {
	q := &queue{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *queue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) run() {
	defer close(q.done)
	for {
		select {
		case <-q.quit:
			return
		case <-q.wake:
		}
		for {
			q.mu.Lock()
			if len(q.items) == 0 {
				q.mu.Unlock()
				break
			}
			f := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			f()
		}
	}
}

func (q *queue) stop() { close(q.quit); <-q.done }

type signaller struct {
	description func(webrtc.SessionDescription)
	candidate   func(webrtc.ICECandidateInit)
}

func (s signaller) SendDescription(d webrtc.SessionDescription) { s.description(d) }
func (s signaller) SendCandidate(c webrtc.ICECandidateInit)     { s.candidate(c) }

// join connects a mediatest peer to the room through in-process signalling, as
// media/harness_test.go does.
func join(t *testing.T, room *media.Room, id string) *mediatest.Peer {
	t.Helper()
	toSFU, toClient := newQueue(), newQueue()
	t.Cleanup(toClient.stop)
	t.Cleanup(toSFU.stop)
	report := func(what string, err error) {
		if err != nil && !errors.Is(err, media.ErrClosed) && !errors.Is(err, mediatest.ErrClosed) {
			t.Logf("%s: %s: %v", id, what, err)
		}
	}
	var peer *media.Peer
	client, err := mediatest.NewPeer(mediatest.Config{
		Name:     id,
		Loopback: true,
		Logger:   testLogger(t),
		OnDescription: func(d webrtc.SessionDescription) {
			toSFU.push(func() { report("SFU HandleDescription", peer.HandleDescription(d)) })
		},
		OnCandidate: func(c webrtc.ICECandidateInit) {
			toSFU.push(func() { report("SFU HandleCandidate", peer.HandleCandidate(c)) })
		},
	})
	if err != nil {
		t.Fatalf("mediatest.NewPeer: %v", err)
	}
	t.Cleanup(client.Close)
	peer, err = room.Join(id, signaller{
		description: func(d webrtc.SessionDescription) {
			toClient.push(func() { report("client HandleDescription", client.HandleDescription(d)) })
		},
		candidate: func(c webrtc.ICECandidateInit) {
			toClient.push(func() { report("client HandleCandidate", client.HandleCandidate(c)) })
		},
	})
	if err != nil {
		t.Fatalf("Join(%q): %v", id, err)
	}
	if err := client.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return client
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// record lets the call run for d: the length of the recording, not a guess at a condition.
func record(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(d):
	}
}

func newStore(t *testing.T, ctx context.Context, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.New(ctx, cfg)
	if err != nil {
		t.Fatalf("store.New: %v", err)
	}
	return st
}

// runManager runs m's uploader until the test ends.
func runManager(t *testing.T, m *Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// probe is what ffprobe says about a file.
type probe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

func (p probe) duration() time.Duration {
	f, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return time.Duration(f * float64(time.Second))
}

func (p probe) codecs() map[string]string {
	out := make(map[string]string)
	for _, s := range p.Streams {
		out[s.CodecType] = s.CodecName
	}
	return out
}

// ffprobe runs ffprobe on a file; errors (ffprobe -v error prints any) fail the test.
func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal("ffprobe is needed to check recordings: apt-get install -y ffmpeg")
	}
	cmd := exec.Command(bin, "-v", "error", "-show_streams", "-show_format", "-of", "json", path)
	var stderr stringsBuilder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", filepath.Base(path), err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("ffprobe %s reports errors: %s", filepath.Base(path), stderr.String())
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	return p
}

type stringsBuilder struct {
	mu  sync.Mutex
	buf []byte
}

func (b *stringsBuilder) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}
func (b *stringsBuilder) String() string { b.mu.Lock(); defer b.mu.Unlock(); return string(b.buf) }
func (b *stringsBuilder) Len() int       { b.mu.Lock(); defer b.mu.Unlock(); return len(b.buf) }

// download fetches an object into a file in dir.
func download(t *testing.T, ctx context.Context, st *store.Store, key, dir string) string {
	t.Helper()
	rc, _, err := st.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	defer rc.Close()
	path := filepath.Join(dir, filepath.Base(key))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return path
}

func downloadManifest(t *testing.T, ctx context.Context, st *store.Store, org, session, id string) Manifest {
	t.Helper()
	key, err := store.ObjectKey(org, session, store.KindRecordings, id+"-manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(download(t, ctx, st, key, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return m
}

// checkSegments downloads every segment of the manifest, checks each is a playable WebM with
// VP8 video and Opus audio, and returns the total ffprobe duration per participant.
func checkSegments(t *testing.T, ctx context.Context, st *store.Store, man Manifest) map[string]time.Duration {
	t.Helper()
	dir := t.TempDir()
	total := make(map[string]time.Duration)
	for _, seg := range man.Segments {
		path := download(t, ctx, st, seg.Key, dir)
		p := ffprobe(t, path)
		if p.Format.FormatName != "matroska,webm" {
			t.Errorf("%s: format %q, want matroska,webm", seg.Key, p.Format.FormatName)
		}
		c := p.codecs()
		if c["video"] != "vp8" || c["audio"] != "opus" {
			t.Errorf("%s: streams %v, want vp8 video and opus audio", seg.Key, c)
		}
		d := p.duration()
		if d <= 0 || d > 3*DefaultSegmentDuration {
			t.Errorf("%s: duration %v", seg.Key, d)
		}
		total[seg.Participant] += d
		t.Logf("%s: %v, %s, %d bytes, manifest says %d ms", filepath.Base(seg.Key), d, p.Format.FormatName, seg.Size, seg.DurationMS)
	}
	return total
}

// mediaClock is a second tap on the room: it measures how much media time (by RTP timestamps)
// each participant's camera really produced while it listened. On a loaded machine the test
// publishers produce less media than wall-clock time, and the recording can only hold what
// was produced.
type mediaClock struct {
	mu    sync.Mutex
	spans map[string]*span
}

type span struct {
	first, last uint32
	ext         int64
}

type clockTap struct {
	c  *mediaClock
	id string
}

func (t clockTap) WriteRTP(kind string, _ webrtc.RTPCodecParameters, pkt *rtp.Packet) {
	if kind != "video" {
		return
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	s := t.c.spans[t.id]
	if s == nil {
		t.c.spans[t.id] = &span{first: pkt.Timestamp, last: pkt.Timestamp}
		return
	}
	s.ext += int64(int32(pkt.Timestamp - s.last))
	s.last = pkt.Timestamp
}

// listen starts measuring; the returned function stops and reports the media time per
// participant.
func listen(t *testing.T, room *media.Room, ids ...string) func() map[string]time.Duration {
	c := &mediaClock{spans: make(map[string]*span)}
	var removes []func()
	for _, id := range ids {
		remove, err := room.AddTap(id, clockTap{c: c, id: id})
		if err != nil {
			t.Fatal(err)
		}
		removes = append(removes, remove)
	}
	return func() map[string]time.Duration {
		for _, r := range removes {
			r()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		out := make(map[string]time.Duration)
		for id, s := range c.spans {
			out[id] = time.Duration(s.ext * int64(time.Second) / 90000)
		}
		return out
	}
}
