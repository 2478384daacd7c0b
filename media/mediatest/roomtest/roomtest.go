// Package roomtest joins mediatest peers to a media.Room through in-process signalling, for
// the tests of packages that sit on the SFU (recording, captions): each direction is a queue
// delivered in order on its own goroutine, like a WebSocket writer.
package roomtest

import (
	"log/slog"
	"testing"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/mediatest"
)

// Join connects a mediatest peer named id to the room and starts it; options change its
// configuration (for example NoVideo). The peer and its signalling stop when the test ends.
func Join(t testing.TB, room *media.Room, id string, log *slog.Logger, options ...func(*mediatest.Config)) *mediatest.Peer {
	t.Helper()
	cfg := mediatest.Config{Name: id, Loopback: true, Logger: log}
	for _, o := range options {
		o(&cfg)
	}
	join := func(s mediatest.Signaller) (mediatest.Remote, error) {
		peer, err := room.Join(id, s)
		return peer, err
	}
	report := func(what string, err error) { t.Logf("%s: %s: %v", id, what, err) }
	client, stop, err := mediatest.Connect(cfg, join, report, media.ErrClosed)
	if err != nil {
		t.Fatalf("join %q: %v", id, err)
	}
	t.Cleanup(stop)
	t.Cleanup(client.Close)
	return client
}
