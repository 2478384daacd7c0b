package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// FuzzAPIRequestBodies decodes arbitrary bodies as each JSON request body of the API (sign-in,
// sessions, appointments, webhooks), then runs the checks the handlers run on them. A body is
// accepted or refused with a 400, 413 or 415 problem; never a panic, never a 5xx.
func FuzzAPIRequestBodies(f *testing.F) {
	for _, s := range []struct {
		kind uint8
		body string
	}{
		{0, `{"email":"specialist@example.com","password":"correct horse battery"}`},
		{0, `{"email":null,"password":7}`},
		{1, `{"customer_name":"Ann"}`},
		{1, `{}`},
		{2, `{"start":"2030-01-01T10:00:00Z","end":"2030-01-01T10:30:00Z","customer":{"name":"Ann","phone":"+4915112345678","email":"ann@example.com","language":"fr-CA"}}`},
		{2, `{"start":"0000-01-01T00:00:00Z","end":"9999-12-31T23:59:59Z","customer":{"name":" ","email":"\"a\"@b"}}`},
		{2, `{"start":"2030-01-01T10:00:00+14:00","end":"2030-01-01T10:00:00-12:00","customer":{"name":"x","email":"Ann <ann@example.com>"}}`},
		{3, `{"start":"2030-01-01T10:00:00Z","customer":{"name":"Bob","phone":"+33612345678"},"queue":"","specialist_id":null}`},
		{4, `{"url":"https://example.com/hook","events":["session.created","*"]}`},
		{4, `{"url":"http://[::1]:80/","events":[]}`},
		{0, `{"email":"a","password":"b"} {"email":"c"}`},
		{2, `{"customer":{"name":"x"},"customer":{"name":"y"}}`},
		{3, `{"start":"2030-01-01T10:00:00.999999999999Z"}`},
		{1, `[` + strings.Repeat(`[`, 10000)},
	} {
		f.Add(s.kind, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		var v any
		switch kind % 5 {
		case 0:
			v = &api.Login{}
		case 1:
			v = &api.CreateSession{}
		case 2:
			v = &api.CreateAppointment{}
		case 3:
			v = &api.UpdateAppointment{}
		case 4:
			v = &struct {
				URL    string   `json:"url"`
				Events []string `json:"events"`
			}{}
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/v1/anything", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if !readJSON(w, r, v) {
			if w.Code != 400 && w.Code != 413 && w.Code != 415 {
				t.Fatalf("refused with %d", w.Code)
			}
			var p problem.Details
			if w.Header().Get("Content-Type") != problem.ContentType || json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Status != w.Code {
				t.Fatalf("refusal is not a problem: %q", w.Body.String())
			}
			return
		}
		switch in := v.(type) {
		case *api.CreateAppointment:
			_ = validateWindow(in.Start, in.End) + validateCustomer(in.Customer)
		case *api.UpdateAppointment:
			if in.Customer != nil {
				_ = validateCustomer(*in.Customer)
			}
			if in.Start != nil && in.End != nil {
				_ = validateWindow(*in.Start, *in.End)
			}
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("an accepted body does not encode again: %v", err)
		}
	})
}

// FuzzCleanFileName: the ?name= of a shared file is shown to everyone in the call and sent in
// webhooks. What is kept is a base name without path, quotes, control or format characters
// (a right-to-left override makes "photo\u202egpj.exe" read as "photoexe.jpg"), valid UTF-8,
// short, and cleaning it again changes nothing.
func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{
		"invoice.pdf", "../../etc/passwd", `C:\Users\ann\photo.jpg`, "a\x00b\r\nc.txt", ` "quoted" .txt `,
		".", "..", "/", "", "...", strings.Repeat("é", 100), strings.Repeat("a", 119) + "é",
		"photo\u202egpj.exe", "\u0085name\u2028.txt", "\xff\xfe.txt", "dir/ ", "a/b/c/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := cleanFileName(name)
		if len(got) > maxFileNameLen {
			t.Fatalf("%d bytes kept", len(got))
		}
		if got == "." || got == ".." {
			t.Fatalf("kept %q", got)
		}
		if strings.ContainsAny(got, `/\"`) {
			t.Fatalf("kept a path or a quote: %q", got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("kept a control or format character (bidi overrides spoof extensions): %q", got)
			}
		}
		if !utf8.ValidString(got) {
			t.Fatalf("kept invalid UTF-8: %q from %q", got, name)
		}
		if again := cleanFileName(got); again != got {
			t.Fatalf("cleaning again changes %q to %q", got, again)
		}
	})
}

// FuzzKeyOwner: a download token names an object key; only keys under the organisation and
// session they name are served.
func FuzzKeyOwner(f *testing.F) {
	for _, s := range []string{"orgs/o/sessions/s/files/f.pdf", "orgs//sessions//x", "orgs/o/sessions/s", "/orgs/o/sessions/s/x", "orgs/o/../sessions/s/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		org, session, ok := keyOwner(key)
		if ok && !strings.HasPrefix(key, "orgs/"+org+"/sessions/"+session+"/") {
			t.Fatalf("keyOwner(%q) = %q, %q", key, org, session)
		}
	})
}

// startFuzzNode starts a node for a whole fuzz target (every input, in every fuzzing worker)
// with a call in it, and returns the session's API base and the customer's link token.
func startFuzzNode(f *testing.F) (base, customer string) {
	f.Helper()
	cfg := config.Defaults()
	cfg.Addr, cfg.DataDir, cfg.NodeID = "127.0.0.1:0", f.TempDir(), "fuzz"
	cfg.BootstrapAPIKey, cfg.BootstrapPassword = testAPIKey, testPassword
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.IPRate, cfg.IPBurst = 1_000_000, 1_000_000
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		f.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	f.Cleanup(func() { cancel(); <-done })

	req, _ := http.NewRequest("POST", srv.URL()+"/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.Fatal(err)
	}
	var sess api.Session
	err = json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	if err != nil {
		f.Fatal(err)
	}
	ws := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/v1/signal"
	join := func(link string) (*websocket.Conn, wire.Welcome) {
		conn, _, err := websocket.DefaultDialer.Dial(ws, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { conn.Close() })
		raw, _ := json.Marshal(wire.Join{Token: linkToken(link)})
		_ = conn.WriteJSON(wire.Envelope{Type: wire.TypeJoin, Payload: raw})
		var w wire.Welcome
		awaitFrame(f, conn, wire.TypeWelcome, &w)
		return conn, w
	}
	cust, w := join(sess.CustomerURL)
	spec, _ := join(sess.SpecialistURL)
	raw, _ := json.Marshal(wire.Admit{ParticipantID: w.ParticipantID})
	_ = spec.WriteJSON(wire.Envelope{Type: wire.TypeAdmit, Payload: raw})
	awaitFrame(f, cust, wire.TypeAdmitted, nil)
	go func() { // keep reading, so the sockets' outboxes never fill
		for _, c := range []*websocket.Conn{cust, spec} {
			go func() {
				for {
					_ = c.SetReadDeadline(time.Time{})
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}()
		}
	}()
	return srv.URL() + "/v1/sessions/" + sess.ID, linkToken(sess.CustomerURL)
}

func awaitFrame(f *testing.F, conn *websocket.Conn, typ wire.Type, out any) {
	f.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var env wire.Envelope
		if err := conn.ReadJSON(&env); err != nil {
			f.Fatalf("waiting for %s: %v", typ, err)
		}
		if env.Type == typ {
			if out != nil {
				_ = json.Unmarshal(env.Payload, out)
			}
			return
		}
	}
}

// FuzzUploads sends arbitrary names, content types and bodies as files and snapshots to a real
// node, as the customer of a call. Every answer is a 201 or a 4xx problem, never a 5xx, and the
// node stays healthy.
func FuzzUploads(f *testing.F) {
	for _, s := range []struct {
		snapshot    bool
		name, ctype string
		body        []byte
	}{
		{false, "report.pdf", "application/pdf", []byte("%PDF-1.4\n%%EOF")},
		{false, "notes.txt", "", []byte("hello")},
		{false, "../../x.pdf", "text/html", []byte("<html><script>alert(1)</script>")},
		{false, "", "", []byte("%PDF")},
		{false, "a\x00b.zip", "application/zip", []byte("PK\x03\x04" + strings.Repeat("\x00", 30))},
		{true, "", "image/png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x7f\xff\xff\xff\x7f\xff\xff\xff\x08\x02\x00\x00\x00")},
		{true, "", "image/jpeg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")},
		{true, "", "", nil},
	} {
		f.Add(s.snapshot, s.name, s.ctype, s.body)
	}
	base, customer := startFuzzNode(f)
	f.Fuzz(func(t *testing.T, snapshot bool, name, ctype string, body []byte) {
		target := base + "/files?name=" + url.QueryEscape(name)
		if snapshot {
			target = base + "/snapshots"
		}
		req, err := http.NewRequest("POST", target, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+customer)
		if ctype != "" && !strings.ContainsAny(ctype, "\r\n\x00") {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
			t.Fatalf("upload of %d bytes named %q answered %d", len(body), name, resp.StatusCode)
		}
		if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != problem.ContentType {
			t.Fatalf("refusal %d is not a problem", resp.StatusCode)
		}
	})
}
