package recording

import (
	"testing"
	"time"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/recording/store/storetest"
)

// newRoom starts an SFU and returns one of its rooms.
func newRoom(t *testing.T, session string) *media.Room {
	t.Helper()
	sfu, err := media.New(media.Config{ICELoopback: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("media.New: %v", err)
	}
	t.Cleanup(func() { sfu.Close() })
	return sfu.Room(session)
}

func TestRecordingH264(t *testing.T) {
	ctx := testContext(t)
	st := newStore(t, ctx, storetest.StartMinIO(t))
	room := newRoom(t, testSession)
	carol := joinH264(t, room, "carol")
	carol.waitConnected(t, ctx)

	spool := t.TempDir()
	const segment = 2 * time.Second
	m := New(Config{SpoolDir: spool, Store: st, SegmentDuration: segment, Logger: testLogger(t)})
	runManager(t, m)
	produced := listen(t, room, "carol")
	id, err := m.Start(ctx, testOrg, testSession, room)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	const length = 6 * time.Second
	began := time.Now()
	record(t, ctx, length)
	man, err := m.Stop(ctx, id)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	recorded := time.Since(began)
	mediaTime := produced()
	waitFor(t, ctx, "uploads", func() bool { return m.Backlog() == 0 })

	// On a loaded machine the publisher produces less media than wall-clock time.
	if want := int(mediaTime["carol"] / segment); len(man.Segments) < want {
		t.Errorf("%d segments, want at least %d for %v of media at %v per segment", len(man.Segments), want, mediaTime["carol"], segment)
	}
	for _, s := range man.Segments {
		if s.Width != h264ClipWidth || s.Height != h264ClipHeight {
			t.Errorf("segment %d: %dx%d in the manifest, want %dx%d (from the SPS)", s.Seq, s.Width, s.Height, h264ClipWidth, h264ClipHeight)
		}
		if len(s.Tracks) != 2 || s.Tracks[0] != "video/H264" || s.Tracks[1] != "audio/opus" {
			t.Errorf("segment %d: tracks %v", s.Seq, s.Tracks)
		}
	}
	stored := downloadManifest(t, ctx, st, testOrg, testSession, id)
	if len(stored.Segments) != len(man.Segments) {
		t.Errorf("stored manifest has %d segments, want %d", len(stored.Segments), len(man.Segments))
	}
	total := checkSegments(t, ctx, st, man, map[string]segmentKind{"carol": h264Segments})
	checkCoverage(t, man, "carol", total["carol"], mediaTime["carol"], recorded)
	if carol.requests.Load() == 0 {
		t.Error("the publisher never got a keyframe request")
	}
	t.Logf("%d keyframe requests", carol.requests.Load())
	assertSpoolEmpty(t, spool)
}

func TestRecordingAudioOnly(t *testing.T) {
	ctx := testContext(t)
	st := newStore(t, ctx, storetest.StartMinIO(t))
	room := newRoom(t, testSession)
	dave := join(t, room, "dave", func(c *mediatest.Config) { c.NoVideo = true })
	if err := dave.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	spool := t.TempDir()
	const segment = 2 * time.Second
	m := New(Config{SpoolDir: spool, Store: st, SegmentDuration: segment, Logger: testLogger(t)})
	runManager(t, m)
	produced := listen(t, room, "dave")
	id, err := m.Start(ctx, testOrg, testSession, room)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	const length = 6 * time.Second
	began := time.Now()
	record(t, ctx, length)
	man, err := m.Stop(ctx, id)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	recorded := time.Since(began)
	mediaTime := produced()
	waitFor(t, ctx, "uploads", func() bool { return m.Backlog() == 0 })

	if want := int(mediaTime["dave/audio"] / segment); len(man.Segments) < want {
		t.Errorf("%d segments, want at least %d for %v of audio at %v per segment", len(man.Segments), want, mediaTime["dave/audio"], segment)
	}
	for _, s := range man.Segments {
		if len(s.Tracks) != 1 || s.Tracks[0] != "audio/opus" || s.Width != 0 {
			t.Errorf("segment %d: tracks %v, %dx%d; want audio/opus alone", s.Seq, s.Tracks, s.Width, s.Height)
		}
	}
	total := checkSegments(t, ctx, st, man, map[string]segmentKind{"dave": opusSegments})
	// All of the audio: the recorder holds the first second while it waits for video that
	// does not come, then writes it.
	checkCoverage(t, man, "dave", total["dave"], mediaTime["dave/audio"], recorded)
	assertSpoolEmpty(t, spool)
}
