package media

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/media/mediatest/testlog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait; media on loopback normally flows within a second or two.
const testTimeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger writes to the test's output while the test runs (see testlog).
func testLogger(t *testing.T) *slog.Logger { return testlog.New(t, slog.LevelWarn) }

func newTestSFU(t *testing.T, cfg Config) *SFU {
	t.Helper()
	cfg.ICELoopback = true
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("SFU.Close: %v", err)
		}
	})
	return s
}

// participant is a mediatest peer joined to a room through in-process signalling.
type participant struct {
	id     string
	client *mediatest.Peer
	peer   *Peer
}

// join connects a new mediatest participant to the room and starts its media. Everything is
// closed when the test ends.
func join(t *testing.T, room *Room, id string) *participant {
	t.Helper()
	p := &participant{id: id}
	join := func(s mediatest.Signaller) (mediatest.Remote, error) {
		var err error
		p.peer, err = room.Join(id, s)
		return p.peer, err
	}
	report := func(what string, err error) { t.Errorf("%s: %s: %v", id, what, err) }
	client, stop, err := mediatest.Connect(mediatest.Config{Name: id, Loopback: true, Logger: testLogger(t)}, join, report, ErrClosed)
	if err != nil {
		t.Fatalf("join %q: %v", id, err)
	}
	t.Cleanup(stop)
	t.Cleanup(client.Close)
	p.client = client
	return p
}

// waitMedia waits until p receives audio and video from every one of the others.
// callOfTwo starts alice and bob in one room of a new SFU and waits until each receives the
// other's media.
func callOfTwo(t *testing.T, ctx context.Context, cfg Config) (sfu *SFU, room *Room, alice, bob *participant) {
	t.Helper()
	sfu = newTestSFU(t, cfg)
	room = sfu.Room("session-1")
	alice = join(t, room, "alice")
	bob = join(t, room, "bob")
	waitMedia(t, ctx, alice, bob)
	waitMedia(t, ctx, bob, alice)
	return sfu, room, alice, bob
}

func waitMedia(t *testing.T, ctx context.Context, p *participant, from ...*participant) {
	t.Helper()
	for _, o := range from {
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if err := p.client.WaitReceivedFrom(ctx, o.id, kind, 20); err != nil {
				t.Fatal(err)
			}
		}
	}
}

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
