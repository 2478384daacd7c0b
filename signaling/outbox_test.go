package signaling

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/wire"
)

func TestAFullOutboxSaysOverflowedOnceAndNeverBlocks(t *testing.T) {
	var o outbox
	o.init(2, slog.New(slog.DiscardHandler))
	o.sendEncoded([]byte("1"))
	o.sendEncoded([]byte("2"))
	select {
	case <-o.overflowed:
		t.Fatal("overflowed before the outbox was full")
	default:
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 { // past the limit, more than once: no block, no double close
			o.sendEncoded([]byte("3"))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("queuing into a full outbox blocked")
	}
	select {
	case <-o.overflowed:
	default:
		t.Fatal("a frame found the outbox full and overflowed is still open")
	}
	if got := len(o.frames); got != 2 {
		t.Fatalf("%d frames queued, want the 2 that fitted", got)
	}
}

// The writer sends what was queued, in order; once stopped it flushes what is left and says
// goodbye with the code and reason the socket's loop chose.
func TestTheWriterFlushesThenSaysGoodbye(t *testing.T) {
	var o outbox
	o.init(8, slog.New(slog.DiscardHandler))
	stop := make(chan struct{})
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		go o.writeFrames(conn, stop, func() (int, string) { return websocket.ClosePolicyViolation, "too slow to read" }, done)
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	o.send(wire.TypeError, wire.Errorf(wire.CodeBadMessage, "first"))
	o.sendError(wire.Errorf(wire.CodeBadMessage, "second"))
	o.sendError(wire.Errorf(wire.CodeBadMessage, "last, queued as the loop ends"))
	close(stop)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"first", "second", "last, queued as the loop ends"} {
		_, frame, err := client.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if !strings.Contains(string(frame), want) {
			t.Fatalf("frame %s, want the error %q", frame, want)
		}
	}
	_, _, err = client.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != "too slow to read" {
		t.Fatalf("after the frames: %v, want close %d %q", err, websocket.ClosePolicyViolation, "too slow to read")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer did not end after its goodbye")
	}
}
