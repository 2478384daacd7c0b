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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/media/mediatest/roomtest"
	"github.com/assist-video/assist/media/mediatest/testlog"
	"github.com/assist-video/assist/recording/store"
)

// testTimeout bounds every wait of a test.
const testTimeout = 90 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger writes to the test's output while the test runs (see testlog).
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelWarn) }

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

// join connects a mediatest peer to the room through in-process signalling (roomtest);
// options change its configuration (for example NoVideo).
func join(t *testing.T, room *media.Room, id string, options ...func(*mediatest.Config)) *mediatest.Peer {
	t.Helper()
	return roomtest.Join(t, room, id, testLogger(t), options...)
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
		Frames    string `json:"nb_read_frames"`
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

// ffprobe runs ffprobe on a file, decoding all of it; errors (ffprobe -v error prints any)
// fail the test.
func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal("ffprobe is needed to check recordings: apt-get install -y ffmpeg")
	}
	// -count_frames decodes every frame: a file that does not decode from its start (no
	// keyframe first, missing parameter sets) makes the decoder log errors, which fail the test.
	cmd := exec.Command(bin, "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path)
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

// segmentKind is what a participant's segments should hold.
type segmentKind struct {
	video       string // ffprobe's codec name, "" for none
	ext         string // of the object name
	contentType string
	docType     string // of the EBML header
}

var (
	vp8Segments  = segmentKind{video: "vp8", ext: ".webm", contentType: "video/webm", docType: "webm"}
	h264Segments = segmentKind{video: "h264", ext: ".mkv", contentType: "video/x-matroska", docType: "matroska"}
	opusSegments = segmentKind{ext: ".webm", contentType: "audio/webm", docType: "webm"}
)

// checkSegments downloads every segment of the manifest and checks each is a playable file
// of the kind want says (by participant; VP8 and Opus WebM when not said) that decodes without
// an error from its first frame (see ffprobe), and returns the total ffprobe duration per
// participant.
func checkSegments(t *testing.T, ctx context.Context, st *store.Store, man Manifest, want map[string]segmentKind) map[string]time.Duration {
	t.Helper()
	dir := t.TempDir()
	total := make(map[string]time.Duration)
	for _, seg := range man.Segments {
		kind, ok := want[seg.Participant]
		if !ok {
			kind = vp8Segments
		}
		path := download(t, ctx, st, seg.Key, dir)
		p := ffprobe(t, path)
		if p.Format.FormatName != "matroska,webm" {
			t.Errorf("%s: format %q, want matroska,webm", seg.Key, p.Format.FormatName)
		}
		if filepath.Ext(seg.Key) != kind.ext || seg.ContentType != kind.contentType {
			t.Errorf("%s: content type %q, want %s named %s", seg.Key, seg.ContentType, kind.contentType, kind.ext)
		}
		if got := ebmlDocType(t, path); got != kind.docType {
			t.Errorf("%s: DocType %q, want %q", seg.Key, got, kind.docType)
		}
		c := p.codecs()
		if c["video"] != kind.video || c["audio"] != "opus" || len(p.Streams) != len(seg.Tracks) {
			t.Errorf("%s: streams %v (%d), manifest says %v; want video %q and opus audio", seg.Key, c, len(p.Streams), seg.Tracks, kind.video)
		}
		if kind.video != "" {
			for _, s := range p.Streams {
				if s.CodecType == "video" && (s.Width != seg.Width || s.Height != seg.Height || s.Width == 0) {
					t.Errorf("%s: ffprobe says %dx%d, manifest %dx%d", seg.Key, s.Width, s.Height, seg.Width, seg.Height)
				}
			}
		}
		for _, s := range p.Streams {
			// A segment salvaged after a crash may hold no audio: what the writer had not
			// yet put in the file is lost with the process. A short last segment may hold
			// none either when the publisher's audio lags its video (up to maxDrift) on a
			// loaded machine.
			short := seg.DurationMS < (maxDrift + 500*time.Millisecond).Milliseconds()
			if n, _ := strconv.Atoi(s.Frames); n == 0 && (s.CodecType == "video" || (man.State == StateComplete && !short)) {
				t.Errorf("%s: no %s frame decodes", seg.Key, s.CodecType)
			}
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
	key := t.id
	if kind == "audio" {
		key += "/audio"
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	s := t.c.spans[key]
	if s == nil {
		t.c.spans[key] = &span{first: pkt.Timestamp, last: pkt.Timestamp}
		return
	}
	s.ext += int64(int32(pkt.Timestamp - s.last))
	s.last = pkt.Timestamp
}

// listen starts measuring; the returned function stops and reports the media time per
// participant: of the camera under the participant's id, of the microphone under
// "{id}/audio".
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
			clock := int64(90000)
			if strings.HasSuffix(id, "/audio") {
				clock = 48000
			}
			out[id] = time.Duration(s.ext * int64(time.Second) / clock)
		}
		return out
	}
}

// ebmlDocType reads the DocType of a Matroska or WebM file's EBML header.
func ebmlDocType(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h struct {
		Header webm.EBMLHeader `ebml:"EBML,stop"`
	}
	if err := ebml.Unmarshal(f, &h); err != nil && !errors.Is(err, ebml.ErrReadStopped) {
		t.Errorf("%s: EBML header: %v", filepath.Base(path), err)
	}
	return h.Header.DocType
}

// checkCoverage checks that a participant's segments, lasting d in all, hold all the media its
// publisher produced (produced, by the RTP clock) from its first segment on, and no more time
// than the wall-clock time recorded. (After a publisher stalls the recorder places its media
// at arrival again, so the segments can last longer than the media produced, never longer
// than the recording.)
func checkCoverage(t *testing.T, man Manifest, participant string, d, produced, recorded time.Duration) {
	t.Helper()
	var first time.Time
	for _, s := range man.Segments {
		if s.Participant == participant && (first.IsZero() || s.StartedAt.Before(first)) {
			first = s.StartedAt
		}
	}
	wait := max(first.Sub(man.StartedAt), 0) // for the first keyframe
	if d < produced-wait-300*time.Millisecond || d > recorded+300*time.Millisecond {
		t.Errorf("%s: segments last %v in all; the publisher produced %v of media in the %v recorded, %v of it before the first segment",
			participant, d, produced, recorded, wait)
	}
	t.Logf("%s: %v in segments; %v of media produced in %v, %v before the first segment", participant, d, produced, recorded, wait)
}
