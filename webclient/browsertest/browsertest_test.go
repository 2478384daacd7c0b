package browsertest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/webclient"
	"github.com/assist-video/assist/webclient/browsertest"
)

// pageServer serves the embedded pages the way the real server mounts them.
func pageServer(t *testing.T, extra func(mux *http.ServeMux)) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", webclient.Assets())
	mux.HandleFunc("GET /c/{jwt}", webclient.ServeCustomer)
	mux.HandleFunc("GET /s/{jwt}", webclient.ServeConsole)
	mux.HandleFunc("GET /console/", webclient.ServeConsole)
	mux.HandleFunc("GET /bad-link", func(w http.ResponseWriter, r *http.Request) {
		webclient.ServeError(w, http.StatusGone, "This link has expired", `Ask for a new link <b>now</b>.`)
	})
	if extra != nil {
		extra(mux)
	}
	srv := httptest.NewServer(webclient.SecurityHeaders(mux))
	t.Cleanup(srv.Close)
	return srv
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCustomerPageLoads(t *testing.T) {
	srv := pageServer(t, nil)
	b := browsertest.New(t)
	tab := b.NewNamedTab(t, "customer")

	must(t, browsertest.Navigate(tab, srv.URL+"/c/header.claims.signature"))

	t.Run("the page script runs and reports idle", func(t *testing.T) {
		must(t, browsertest.WaitState(tab, "idle", 10*time.Second))
	})
	t.Run("the camera preview gets a live video track from the fake device", func(t *testing.T) {
		must(t, browsertest.WaitFor(tab, `(() => {
			const s = document.getElementById('preview').srcObject;
			return s && s.getVideoTracks().some((t) => t.readyState === 'live')
				&& s.getAudioTracks().some((t) => t.readyState === 'live');
		})()`, 10*time.Second))
		must(t, browsertest.WaitFor(tab, `document.getElementById('preview').videoWidth > 0`, 10*time.Second))
	})
	t.Run("the test hooks are there before any call", func(t *testing.T) {
		pc, err := browsertest.Eval[bool](tab, `window.assistDebug.pc() === null`)
		must(t, err)
		if !pc {
			t.Error("assistDebug.pc() is not null before joining")
		}
		n, err := browsertest.FramesDecoded(tab)
		must(t, err)
		if n != 0 {
			t.Errorf("framesDecoded %d before joining", n)
		}
		if err := browsertest.WaitVisible(tab, "#join-button", 5*time.Second); err != nil {
			t.Error(err)
		}
	})
	t.Run("no script errors and no CSP violations", func(t *testing.T) {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
		}
	})
}

func TestErrorPageRendersUnderTheCSP(t *testing.T) {
	srv := pageServer(t, nil)
	b := browsertest.New(t)
	tab := b.NewTab(t)
	must(t, browsertest.Navigate(tab, srv.URL+"/bad-link"))
	title, err := browsertest.Text(tab, "h1")
	must(t, err)
	if title != "This link has expired" {
		t.Errorf("title %q", title)
	}
	msg, err := browsertest.Text(tab, "#error-message")
	must(t, err)
	if msg != "Ask for a new link <b>now</b>." {
		t.Errorf("message %q: HTML in it was not shown as text", msg)
	}
	// The stylesheet applied: the panel has a border radius from app.css.
	must(t, browsertest.WaitFor(tab, `getComputedStyle(document.querySelector('.panel')).borderTopLeftRadius === '12px'`, 5*time.Second))
	if errs := browsertest.Errors(tab); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func TestCustomerCall(t *testing.T) {
	sfu := newFakeSFU(t, "customer")
	srv := pageServer(t, func(mux *http.ServeMux) { mux.Handle("GET /v1/signal", sfu) })
	b := browsertest.New(t)
	tab := b.NewNamedTab(t, "customer")

	must(t, browsertest.Navigate(tab, srv.URL+"/c/the.link.token"))
	must(t, browsertest.WaitState(tab, "idle", 10*time.Second))
	must(t, browsertest.Type(tab, "#name-input", `Ana <b>"O'Neil"</b>`))
	must(t, browsertest.Click(tab, "#join-button"))

	join := sfu.next(t, 10*time.Second)
	var jp struct {
		Token     string  `json:"token"`
		Name      string  `json:"name"`
		SessionID *string `json:"session_id"`
	}
	must(t, json.Unmarshal(join.Payload, &jp))
	if join.Type != "join" || jp.Token != "the.link.token" || jp.Name != `Ana <b>"O'Neil"</b>` || jp.SessionID != nil {
		t.Fatalf("first message %s %s", join.Type, join.Payload)
	}
	conn := sfu.conn(t)

	t.Run("waiting shows the waiting room and the position", func(t *testing.T) {
		must(t, browsertest.WaitState(tab, "waiting", 10*time.Second))
		must(t, browsertest.WaitVisible(tab, "#waiting-view", 5*time.Second))
		conn.send("waiting", map[string]any{"position": 3})
		must(t, browsertest.WaitFor(tab, `document.getElementById('queue-position').textContent.includes('3')`, 5*time.Second))
		if pc, _ := browsertest.Eval[bool](tab, `window.assistDebug.pc() === null`); !pc {
			t.Error("a peer connection exists before admitted")
		}
	})

	t.Run("admitted starts the call; the page decodes video from the SFU", func(t *testing.T) {
		conn.send("admitted", map[string]any{})
		must(t, browsertest.WaitState(tab, "in-call", 10*time.Second))
		select {
		case sdp := <-conn.offers:
			if !strings.Contains(sdp, "m=video") || !strings.Contains(sdp, "m=audio") {
				t.Errorf("the first offer lacks the camera or the microphone:\n%s", sdp)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the browser sent no offer after admitted")
		}
		must(t, browsertest.WaitFramesDecoded(tab, 10, 20*time.Second))
		must(t, browsertest.WaitFor(tab, `document.querySelectorAll('#remote-videos video').length === 1`, 5*time.Second))
	})

	t.Run("the roster names the remote video", func(t *testing.T) {
		conn.send("participants", map[string]any{"participants": []map[string]any{
			{"participant_id": "p-customer", "name": "Ana", "role": "customer", "state": "in_call"},
			{"participant_id": "p-echo", "name": "Sam <i>the specialist</i>", "role": "specialist", "state": "in_call"},
		}})
		must(t, browsertest.WaitFor(tab, `document.querySelector('#remote-videos .tile-caption').textContent === 'Sam <i>the specialist</i>'`, 5*time.Second))
	})

	t.Run("an error message is shown without ending the call", func(t *testing.T) {
		conn.send("error", map[string]any{"code": "invalid_state", "message": "You cannot do that now."})
		must(t, browsertest.WaitFor(tab, `document.getElementById('notices').textContent.includes('You cannot do that now.')`, 5*time.Second))
		state, err := browsertest.State(tab)
		must(t, err)
		if state != "in-call" {
			t.Errorf("state %q after an error message", state)
		}
	})

	t.Run("messages of other types (the tools, a frame typed close) leave the call alone", func(t *testing.T) {
		conn.send("chat", map[string]any{"id": "m1", "text": "hello"})
		conn.send("close", map[string]any{})
		conn.send("message", map[string]any{})
		conn.send("participants", map[string]any{"participants": []map[string]any{}}) // a marker that the frames before it were read
		must(t, browsertest.WaitFor(tab, `document.querySelector('#remote-videos .tile-caption').hidden`, 5*time.Second))
		state, err := browsertest.State(tab)
		must(t, err)
		if state != "in-call" {
			t.Errorf("state %q", state)
		}
	})

	t.Run("hang up sends leave and ends the page", func(t *testing.T) {
		must(t, browsertest.Click(tab, "#hangup-button"))
		if m := sfu.next(t, 5*time.Second); m.Type != "leave" {
			t.Errorf("got %s, want leave", m.Type)
		}
		must(t, browsertest.WaitState(tab, "ended", 5*time.Second))
		must(t, browsertest.WaitFor(tab, `window.assistDebug.pc() === null`, 5*time.Second))
	})

	if errs := browsertest.Errors(tab); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func TestCustomerDeniedAndEnded(t *testing.T) {
	sfu := newFakeSFU(t, "customer")
	srv := pageServer(t, func(mux *http.ServeMux) { mux.Handle("GET /v1/signal", sfu) })
	b := browsertest.New(t)

	t.Run("denied shows that the customer was not admitted", func(t *testing.T) {
		tab := b.NewNamedTab(t, "denied")
		must(t, browsertest.Navigate(tab, srv.URL+"/c/tok"))
		must(t, browsertest.Click(tab, "#join-button"))
		sfu.next(t, 10*time.Second)
		conn := sfu.conn(t)
		must(t, browsertest.WaitState(tab, "waiting", 10*time.Second))
		conn.send("denied", map[string]any{"reason": "We are closed today."})
		conn.close()
		must(t, browsertest.WaitState(tab, "denied", 5*time.Second))
		title, _ := browsertest.Text(tab, "#end-title")
		msg, _ := browsertest.Text(tab, "#end-message")
		if title != "You were not admitted" || msg != "We are closed today." {
			t.Errorf("title %q, message %q", title, msg)
		}
	})

	t.Run("session_ended shows that the session has ended", func(t *testing.T) {
		tab := b.NewNamedTab(t, "ended")
		must(t, browsertest.Navigate(tab, srv.URL+"/c/tok"))
		must(t, browsertest.Click(tab, "#join-button"))
		sfu.next(t, 10*time.Second)
		conn := sfu.conn(t)
		must(t, browsertest.WaitState(tab, "waiting", 10*time.Second))
		conn.send("admitted", map[string]any{})
		must(t, browsertest.WaitState(tab, "in-call", 5*time.Second))
		conn.send("session_ended", map[string]any{"reason": "ended"})
		conn.close()
		must(t, browsertest.WaitState(tab, "ended", 5*time.Second))
		title, _ := browsertest.Text(tab, "#end-title")
		if title != "The session has ended" {
			t.Errorf("title %q", title)
		}
		// The camera is released when the session ends.
		must(t, browsertest.WaitFor(tab, `window.assistDebug.localStream().getTracks().every((t) => t.readyState === 'ended')`, 5*time.Second))
	})

	t.Run("a refused join is an error, not a reconnect loop", func(t *testing.T) {
		tab := b.NewNamedTab(t, "refused")
		refusing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			var m envelope
			_ = ws.ReadJSON(&m)
			_ = ws.WriteJSON(map[string]any{"type": "error", "payload": map[string]string{"code": "unauthorized", "message": "This link has expired."}})
		})
		srv2 := pageServer(t, func(mux *http.ServeMux) { mux.Handle("GET /v1/signal", refusing) })
		must(t, browsertest.Navigate(tab, srv2.URL+"/c/tok"))
		must(t, browsertest.Click(tab, "#join-button"))
		must(t, browsertest.WaitState(tab, "error", 10*time.Second))
		msg, _ := browsertest.Text(tab, "#end-message")
		if msg != "This link has expired." {
			t.Errorf("message %q", msg)
		}
	})
}

// consoleAPI is a stand-in for the REST API the console uses.
func consoleAPI(t *testing.T, mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Email, Password string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Email != "sam@example.com" || req.Password != "secret" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"bad email or password"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token":"console.jwt.token","expires_at":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`)
	})
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer console.jwt.token" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"type":"about:blank","title":"Unauthorized","status":401}`)
			return false
		}
		return true
	}
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":[
			{"id":"s-1","organization_id":"o-1","state":"active","created_at":"2026-11-25T10:00:00Z","participants":[
				{"id":"p-9","role":"customer","name":"<img src=x onerror=alert(1)>","state":"waiting","joined_at":"2026-11-25T10:01:00Z","tracks":[]}]},
			{"id":"s-0","organization_id":"o-1","state":"ended","created_at":"2026-11-24T10:00:00Z","ended_at":"2026-11-24T10:30:00Z","participants":[]}
		],"has_more":false}`)
	})
	mux.HandleFunc("POST /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"s-2","organization_id":"o-1","state":"waiting","created_at":"2026-11-25T11:00:00Z",
			"customer_url":"http://example.test/c/cust.jwt","specialist_url":"http://example.test/s/spec.jwt","participants":[]}`)
	})
}

func TestConsole(t *testing.T) {
	sfu := newFakeSFU(t, "specialist")
	srv := pageServer(t, func(mux *http.ServeMux) {
		mux.Handle("GET /v1/signal", sfu)
		consoleAPI(t, mux)
	})
	b := browsertest.New(t)
	tab := b.NewNamedTab(t, "specialist")

	must(t, browsertest.Navigate(tab, srv.URL+"/console/"))
	must(t, browsertest.WaitState(tab, "idle", 10*time.Second))

	t.Run("a wrong password shows the problem", func(t *testing.T) {
		must(t, browsertest.Type(tab, "#login-email", "sam@example.com"))
		must(t, browsertest.Type(tab, "#login-password", "wrong"))
		must(t, browsertest.Click(tab, "#login-button"))
		must(t, browsertest.WaitVisible(tab, "#login-error", 5*time.Second))
	})

	t.Run("signing in lists the sessions", func(t *testing.T) {
		must(t, browsertest.SetValue(tab, "#login-password", ""))
		must(t, browsertest.Type(tab, "#login-password", "secret"))
		must(t, browsertest.Click(tab, "#login-button"))
		must(t, browsertest.WaitVisible(tab, `#session-list [data-session-id="s-1"]`, 5*time.Second))
		people, err := browsertest.Text(tab, `#session-list [data-session-id="s-1"] .session-people`)
		must(t, err)
		if people != "<img src=x onerror=alert(1)>" {
			t.Errorf("names %q: user text must be shown as text", people)
		}
		disabled, err := browsertest.Eval[bool](tab, `document.querySelector('[data-testid="open-session"][data-session-id="s-0"]').disabled`)
		must(t, err)
		if !disabled {
			t.Error("an ended session can be opened")
		}
	})

	t.Run("a new session shows the customer link", func(t *testing.T) {
		must(t, browsertest.Click(tab, "#new-session-button"))
		must(t, browsertest.WaitVisible(tab, "#new-session-panel", 5*time.Second))
		link, err := browsertest.Eval[string](tab, `document.getElementById('customer-link').value`)
		must(t, err)
		if link != "http://example.test/c/cust.jwt" {
			t.Errorf("customer link %q", link)
		}
	})

	t.Run("opening a session joins with the console token and publishes at once", func(t *testing.T) {
		must(t, browsertest.Click(tab, `[data-testid="open-session"][data-session-id="s-1"]`))
		join := sfu.next(t, 10*time.Second)
		var jp struct {
			Token     string `json:"token"`
			SessionID string `json:"session_id"`
		}
		must(t, json.Unmarshal(join.Payload, &jp))
		if join.Type != "join" || jp.Token != "console.jwt.token" || jp.SessionID != "s-1" {
			t.Fatalf("first message %s %s", join.Type, join.Payload)
		}
		conn := sfu.conn(t)
		must(t, browsertest.WaitState(tab, "in-call", 10*time.Second))
		select {
		case <-conn.offers:
		case <-time.After(10 * time.Second):
			t.Fatal("the specialist sent no offer after welcome")
		}
		must(t, browsertest.WaitFramesDecoded(tab, 5, 20*time.Second))

		t.Run("the queue shows waiting customers; Admit sends admit", func(t *testing.T) {
			conn.send("queue", map[string]any{"waiting": []map[string]any{
				{"participant_id": "p-7", "name": "Ana <script>", "since": time.Now().Add(-3 * time.Minute).UTC().Format(time.RFC3339)},
				{"participant_id": "p-8", "name": "", "since": time.Now().UTC().Format(time.RFC3339)},
			}})
			must(t, browsertest.WaitVisible(tab, `[data-testid="admit"][data-participant-id="p-7"]`, 5*time.Second))
			name, _ := browsertest.Text(tab, `#queue-list [data-participant-id="p-7"] .person-name`)
			waited, _ := browsertest.Text(tab, `#queue-list [data-participant-id="p-7"] time`)
			if name != "Ana <script>" || waited != "3 min" {
				t.Errorf("queue entry %q waited %q", name, waited)
			}
			must(t, browsertest.Click(tab, `[data-testid="admit"][data-participant-id="p-7"]`))
			m := sfu.next(t, 5*time.Second)
			if m.Type != "admit" || !strings.Contains(string(m.Payload), `"participant_id":"p-7"`) {
				t.Errorf("got %s %s, want admit p-7", m.Type, m.Payload)
			}
		})

		t.Run("Deny asks for a reason and sends deny", func(t *testing.T) {
			must(t, browsertest.Click(tab, `[data-testid="deny"][data-participant-id="p-8"]`))
			must(t, browsertest.WaitVisible(tab, "#deny-dialog", 5*time.Second))
			must(t, browsertest.Type(tab, "#deny-reason", "Please call back tomorrow"))
			must(t, browsertest.Click(tab, "#deny-confirm-button"))
			m := sfu.next(t, 5*time.Second)
			var p struct{ ParticipantID, Reason string }
			_ = json.Unmarshal(m.Payload, &p)
			if m.Type != "deny" || !strings.Contains(string(m.Payload), `"participant_id":"p-8"`) || !strings.Contains(string(m.Payload), "Please call back tomorrow") {
				t.Errorf("got %s %s", m.Type, m.Payload)
			}
		})

		t.Run("the roster lists the participants", func(t *testing.T) {
			conn.send("participants", map[string]any{"participants": []map[string]any{
				{"participant_id": "p-specialist", "name": "Sam", "role": "specialist", "state": "in_call"},
				{"participant_id": "p-7", "name": "Ana", "role": "customer", "state": "in_call"},
			}})
			must(t, browsertest.WaitFor(tab, `document.querySelectorAll('#roster-list li').length === 2`, 5*time.Second))
			me, _ := browsertest.Text(tab, `#roster-list [data-participant-id="p-specialist"] .person-name`)
			if me != "Sam (you)" {
				t.Errorf("own roster entry %q", me)
			}
		})

		t.Run("End asks first, then sends end; session_ended ends the page", func(t *testing.T) {
			must(t, browsertest.Click(tab, "#end-button"))
			must(t, browsertest.Click(tab, "#end-confirm-button"))
			if m := sfu.next(t, 5*time.Second); m.Type != "end" {
				t.Fatalf("got %s, want end", m.Type)
			}
			conn.send("session_ended", map[string]any{"reason": "ended"})
			conn.close()
			must(t, browsertest.WaitState(tab, "ended", 5*time.Second))
			must(t, browsertest.WaitVisible(tab, "#back-button", 5*time.Second))
		})
	})

	if errs := browsertest.Errors(tab); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func TestSpecialistLink(t *testing.T) {
	sfu := newFakeSFU(t, "specialist")
	srv := pageServer(t, func(mux *http.ServeMux) { mux.Handle("GET /v1/signal", sfu) })
	b := browsertest.New(t)
	tab := b.NewNamedTab(t, "specialist-link")

	must(t, browsertest.Navigate(tab, srv.URL+"/s/spec.link.jwt"))
	join := sfu.next(t, 10*time.Second)
	var payload struct {
		Token    string `json:"token"`
		Language string `json:"language"` // the browser's, for captions in the reader's language
	}
	if err := json.Unmarshal(join.Payload, &payload); join.Type != "join" || err != nil ||
		payload.Token != "spec.link.jwt" || !regexp.MustCompile(`^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$`).MatchString(payload.Language) {
		t.Fatalf("first message %s %s, want join with the link's token and the browser's language", join.Type, join.Payload)
	}
	sfu.conn(t)
	must(t, browsertest.WaitState(tab, "in-call", 10*time.Second))
	must(t, browsertest.WaitFramesDecoded(tab, 5, 20*time.Second))

	must(t, browsertest.Click(tab, "#leave-button"))
	if m := sfu.next(t, 5*time.Second); m.Type != "leave" {
		t.Errorf("got %s, want leave", m.Type)
	}
	must(t, browsertest.WaitState(tab, "ended", 5*time.Second))
	if errs := browsertest.Errors(tab); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func TestNegotiationCollision(t *testing.T) {
	for _, kinds := range [][]string{{"audio", "video"}, {"video"}} {
		t.Run("the SFU offers "+strings.Join(kinds, " and ")+" as the browser offers", func(t *testing.T) {
			testCollision(t, kinds)
		})
	}
}

func testCollision(t *testing.T, kinds []string) {
	sfu := newFakeSFU(t, "customer")
	srv := pageServer(t, func(mux *http.ServeMux) { mux.Handle("GET /v1/signal", sfu) })
	b := browsertest.New(t)
	tab := b.NewNamedTab(t, "customer")
	must(t, browsertest.Navigate(tab, srv.URL+"/c/tok"))
	// Wait for the camera so that the browser offers at once on admitted.
	must(t, browsertest.WaitFor(tab, `window.assistDebug.localStream() !== null`, 10*time.Second))
	must(t, browsertest.Click(tab, "#join-button"))
	sfu.next(t, 10*time.Second)
	conn := sfu.conn(t)
	must(t, browsertest.WaitState(tab, "waiting", 10*time.Second))

	// The SFU offers at the same moment as the browser: whichever order the
	// offers cross in, the polite browser must end up connected both ways.
	conn.send("admitted", map[string]any{})
	conn.offerNow(kinds...)
	must(t, browsertest.WaitState(tab, "in-call", 10*time.Second))
	must(t, browsertest.WaitFor(tab, `window.assistDebug.pc() && window.assistDebug.pc().connectionState === 'connected'`, 20*time.Second))
	must(t, browsertest.WaitFramesDecoded(tab, 10, 20*time.Second))
	must(t, browsertest.WaitFor(tab, `window.assistDebug.pc().signalingState === 'stable'`, 10*time.Second))
	if errs := browsertest.Errors(tab); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func TestCustomerReconnects(t *testing.T) {
	sfu := newFakeSFU(t, "customer")
	srv := pageServer(t, func(mux *http.ServeMux) { mux.Handle("GET /v1/signal", sfu) })
	b := browsertest.New(t)
	tab := b.NewNamedTab(t, "customer")
	must(t, browsertest.Navigate(tab, srv.URL+"/c/tok"))
	must(t, browsertest.Click(tab, "#join-button"))
	sfu.next(t, 10*time.Second)
	conn := sfu.conn(t)
	conn.send("admitted", map[string]any{})
	must(t, browsertest.WaitState(tab, "in-call", 10*time.Second))
	must(t, browsertest.WaitFramesDecoded(tab, 5, 20*time.Second))

	// The socket drops without session_ended (a network change, a server
	// restart): the page says so, joins again with the same token, and
	// gets back into the call once admitted.
	_ = conn.ws.Close()
	must(t, browsertest.WaitState(tab, "reconnecting", 5*time.Second))
	rejoin := sfu.next(t, 10*time.Second)
	if rejoin.Type != "join" || !strings.Contains(string(rejoin.Payload), `"token":"tok"`) {
		t.Fatalf("got %s %s, want the join again", rejoin.Type, rejoin.Payload)
	}
	conn = sfu.conn(t)
	must(t, browsertest.WaitState(tab, "waiting", 5*time.Second))
	conn.send("admitted", map[string]any{})
	must(t, browsertest.WaitState(tab, "in-call", 5*time.Second))
	must(t, browsertest.WaitFor(tab, `window.assistDebug.pc() && window.assistDebug.pc().connectionState === 'connected'`, 20*time.Second))
	must(t, browsertest.WaitFramesDecoded(tab, 5, 20*time.Second))
}

func TestTabsAreIsolated(t *testing.T) {
	srv := pageServer(t, nil)
	b := browsertest.New(t)
	customer := b.NewNamedTab(t, "customer")
	specialist := b.NewNamedTab(t, "specialist")
	for _, tab := range []context.Context{customer, specialist} {
		must(t, browsertest.Navigate(tab, srv.URL+"/c/tok"))
		must(t, browsertest.WaitState(tab, "idle", 10*time.Second))
	}
	if _, err := browsertest.Eval[bool](customer, `(localStorage.setItem('who', 'customer'), sessionStorage.setItem('who', 'customer'), document.cookie = 'who=customer; path=/', true)`); err != nil {
		t.Fatal(err)
	}
	seen, err := browsertest.Eval[string](specialist, `[localStorage.getItem('who'), sessionStorage.getItem('who'), document.cookie].join('|')`)
	must(t, err)
	if seen != "||" {
		t.Errorf("the second tab sees the first tab's storage: %q", seen)
	}
	// Both have the (fake) camera at once.
	for _, tab := range []context.Context{customer, specialist} {
		must(t, browsertest.WaitFor(tab, `(window.assistDebug.localStream() || {getVideoTracks: () => []}).getVideoTracks().some((t) => t.readyState === 'live')`, 10*time.Second))
	}
}

func TestSpecialistAnswersAnOfferThatCameBeforeItsCamera(t *testing.T) {
	sfu := newFakeSFU(t, "specialist")
	srv := pageServer(t, func(mux *http.ServeMux) { mux.Handle("GET /v1/signal", sfu) })
	b := browsertest.New(t)
	tab := b.NewNamedTab(t, "specialist")

	must(t, browsertest.Navigate(tab, srv.URL+"/s/spec.link.jwt"))
	sfu.next(t, 10*time.Second)
	conn := sfu.conn(t)
	// Right after welcome, while the page still waits for getUserMedia, the
	// SFU offers the tracks of a customer who is already in the call.
	conn.offerNow("audio", "video")
	must(t, browsertest.WaitState(tab, "in-call", 10*time.Second))
	must(t, browsertest.WaitFor(tab, `window.assistDebug.pc() && window.assistDebug.pc().connectionState === 'connected'`, 20*time.Second))
	must(t, browsertest.WaitFramesDecoded(tab, 5, 20*time.Second))
	if errs := browsertest.Errors(tab); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
