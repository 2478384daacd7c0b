package signaling

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/assist-video/assist/signaling/wire"
)

// TestAStoppedNodeLeavesNoGoroutines runs a whole node (embedded NATS and S3, SFU, HTTP) with a
// call carrying media, a file upload, a hostile socket and a rate-limited client, stops it,
// and checks that every goroutine the node started has ended: a node can be started and
// stopped any number of times in one process (tests do), and a long-running one does not
// accumulate goroutines per call.
func TestAStoppedNodeLeavesNoGoroutines(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	before := goleak.IgnoreCurrent()
	var open *websocket.Conn

	t.Run("a node carries a call, then stops", func(t *testing.T) {
		ts := newTestServer(t)
		t.Run("the call", func(t *testing.T) {
			s := ts.createSession(t)
			customer := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
			customer.expect(wire.TypeWaiting, nil)
			specialist := ts.joinCall(t, linkToken(s.SpecialistURL), "Sam")
			if err := specialist.peer.Start(); err != nil {
				t.Fatal(err)
			}
			specialist.expect(wire.TypeQueue, nil)
			specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
			customer.expect(wire.TypeAdmitted, nil)
			if err := customer.peer.Start(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := customer.peer.WaitReceivedFrom(ctx, specialist.id, webrtc.RTPCodecTypeVideo, 20); err != nil {
				t.Fatal(err)
			}
			if resp, _ := upload(t, ts.URL+"/v1/sessions/"+s.ID+"/files?name=a.txt", linkToken(s.CustomerURL), []byte("hello")); resp.StatusCode != 201 {
				t.Fatalf("upload: %d", resp.StatusCode)
			}
			bad := ts.dial(t)
			bad.send("teleport", nil)
			if _, err := bad.next(); err != nil {
				t.Fatal(err)
			}
			specialist.write(wire.TypeEnd, wire.Empty{})
			customer.expect(wire.TypeSessionEnded, nil)
		})
		// A customer still connected when the node stops: the drain must close it.
		s := ts.createSession(t)
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/signal", nil)
		if err != nil {
			t.Fatal(err)
		}
		open = conn
		sock := &testSocket{t: t, conn: conn}
		sock.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
		sock.expect(wire.TypeWelcome, nil)
	})
	if open != nil {
		open.Close()
	}
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, before)
}
