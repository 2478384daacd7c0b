package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/wire"
)

const killTestAPIKey = "ak_from_the_environment" // what startNode gives the node

// signalSocket is a participant's signaling socket, spoken to directly.
type signalSocket struct {
	t    *testing.T
	conn *websocket.Conn
}

func (n *node) join(t *testing.T, link, name string) (*signalSocket, wire.Welcome) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.url, "http")+"/v1/signal", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &signalSocket{t: t, conn: conn}
	s.send(wire.TypeJoin, wire.Join{Token: link[strings.LastIndex(link, "/")+1:], Name: name})
	var w wire.Welcome
	s.expect(wire.TypeWelcome, &w)
	return s, w
}

func (s *signalSocket) send(typ wire.Type, payload any) {
	s.t.Helper()
	raw, _ := json.Marshal(payload)
	if err := s.conn.WriteJSON(wire.Envelope{Type: typ, Payload: raw}); err != nil {
		s.t.Fatalf("send %s: %v", typ, err)
	}
}

// expect reads until a message of typ (or one of the other types) arrives, decodes it into
// out and returns its type.
func (s *signalSocket) expect(typ wire.Type, out any, or ...wire.Type) wire.Type {
	s.t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var env wire.Envelope
		if err := s.conn.ReadJSON(&env); err != nil {
			s.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if env.Type == typ || slices.Contains(or, env.Type) {
			if out != nil {
				_ = json.Unmarshal(env.Payload, out)
			}
			return env.Type
		}
	}
}

func (n *node) api(t *testing.T, method, path, bearer string, body io.Reader, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, n.url+path, body)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

func (n *node) participants(t *testing.T, sessionID string) (api.Session, map[string]string) {
	t.Helper()
	var s api.Session
	if code := n.api(t, "GET", "/v1/sessions/"+sessionID, killTestAPIKey, nil, &s); code != http.StatusOK {
		t.Fatalf("get session: %d", code)
	}
	states := map[string]string{}
	for _, p := range s.Participants {
		states[p.ID] = p.State
	}
	return s, states
}

// TestSIGKILLDuringACallLeavesConsistentState kills the real binary while a customer and a
// specialist are in a call, starts it again on the same data directory, and checks what the
// restart makes of the call: the session is still active and joinable with the same links,
// its participants are "reconnecting" (the node's sockets are gone) until they come back or
// the grace runs out, people who return resume without a new admission, and a file whose
// upload was acknowledged before the kill is still there.
func TestSIGKILLDuringACallLeavesConsistentState(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	first := startNode(t, bin, dataDir)

	var sess api.Session
	if code := first.api(t, "POST", "/v1/sessions", killTestAPIKey, nil, &sess); code != http.StatusCreated {
		t.Fatalf("create session: %d", code)
	}
	customer, cw := first.join(t, sess.CustomerURL, "Ann")
	customer.expect(wire.TypeWaiting, nil)
	specialist, sw := first.join(t, sess.SpecialistURL, "Sam")
	specialist.expect(wire.TypeQueue, nil)
	specialist.send(wire.TypeAdmit, wire.Admit{ParticipantID: cw.ParticipantID})
	customer.expect(wire.TypeAdmitted, nil)

	customerToken := sess.CustomerURL[strings.LastIndex(sess.CustomerURL, "/")+1:]
	note := []byte("the serial number is 4711\n")
	var file wire.FileInfo
	if code := first.api(t, "POST", "/v1/sessions/"+sess.ID+"/files?name=note.txt", customerToken, bytes.NewReader(note), &file); code != http.StatusCreated {
		t.Fatalf("upload: %d", code)
	}

	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.done:
	case <-time.After(10 * time.Second):
		t.Fatal("assist did not die of SIGKILL")
	}

	second := startNode(t, bin, dataDir)
	defer second.interrupt(t)
	got, states := second.participants(t, sess.ID)
	if got.State != api.SessionActive {
		t.Fatalf("after the crash the session is %s, want still active (joinable)", got.State)
	}
	if states[cw.ParticipantID] != "reconnecting" || states[sw.ParticipantID] != "reconnecting" {
		t.Fatalf("after the crash the participants are %v, want both reconnecting", states)
	}

	t.Run("an acknowledged upload survives", func(t *testing.T) {
		u, err := url.Parse(file.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(second.url + u.RequestURI()) // the new process listens elsewhere
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, note) {
			t.Fatalf("download after the crash: %d %q", resp.StatusCode, body)
		}
	})

	t.Run("participants who return resume without a new admission", func(t *testing.T) {
		customer, again := second.join(t, sess.CustomerURL, "Ann")
		if again.ParticipantID != cw.ParticipantID {
			t.Fatalf("the customer came back as %s, want %s", again.ParticipantID, cw.ParticipantID)
		}
		if typ := customer.expect(wire.TypeAdmitted, nil, wire.TypeWaiting); typ != wire.TypeAdmitted {
			t.Fatalf("the customer came back to %s, want admitted", typ)
		}
		specialist, sagain := second.join(t, sess.SpecialistURL, "Sam")
		if sagain.ParticipantID != sw.ParticipantID {
			t.Fatalf("the specialist came back as %s, want %s", sagain.ParticipantID, sw.ParticipantID)
		}
		var roster wire.Participants
		for {
			specialist.expect(wire.TypeParticipants, &roster)
			inCall := 0
			for _, p := range roster.Participants {
				if p.State == "in_call" {
					inCall++
				}
			}
			if inCall == 2 {
				break
			}
		}
		if _, states := second.participants(t, sess.ID); states[cw.ParticipantID] != "in_call" || states[sw.ParticipantID] != "in_call" {
			t.Fatalf("after both came back: %v", states)
		}
	})
}
