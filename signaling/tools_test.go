package signaling

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// inCall is a session with an admitted customer and a specialist, on raw sockets.
type inCall struct {
	session              api.Session
	customer, specialist *testSocket
	customerID           string
	specialistID         string
}

func (ts *testServer) startCall(t *testing.T) *inCall {
	t.Helper()
	c := &inCall{session: ts.createSession(t)}
	c.customer = ts.dial(t)
	c.customer.send(wire.TypeJoin, wire.Join{Token: linkToken(c.session.CustomerURL), Name: "Ann"})
	var w wire.Welcome
	c.customer.expect(wire.TypeWelcome, &w)
	c.customerID = w.ParticipantID
	c.specialist = ts.dial(t)
	c.specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(c.session.SpecialistURL), Name: "Sam"})
	c.specialist.expect(wire.TypeWelcome, &w)
	c.specialistID = w.ParticipantID
	c.specialist.send(wire.TypeAdmit, wire.Admit{ParticipantID: c.customerID})
	c.customer.expect(wire.TypeAdmitted, nil)
	c.specialist.expect(wire.TypeParticipants, nil)
	return c
}

func TestChatBothWaysInOrderAndAfterReconnect(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	customer := ts.dial(t)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL), Name: "Ann"})
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.dial(t)
	specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(s.SpecialistURL), Name: "Sam"})
	specialist.expect(wire.TypeHistory, nil)

	// In the waiting room already: "two minutes".
	specialist.send(wire.TypeChat, wire.ChatSend{Text: "Two minutes, please"})
	var got wire.Chat
	customer.expect(wire.TypeChat, &got)
	if got.Text != "Two minutes, please" || got.From.Role != "specialist" || got.From.Name != "Sam" || got.ID == "" {
		t.Fatalf("chat = %+v", got)
	}
	for _, text := range []string{"one", "two", "<b>three</b>"} {
		customer.send(wire.TypeChat, wire.ChatSend{Text: text})
	}
	for _, want := range []string{"Two minutes, please", "one", "two", "<b>three</b>"} {
		specialist.expect(wire.TypeChat, &got)
		if got.Text != want {
			t.Fatalf("specialist got %q, want %q (in order, verbatim: the page renders text, not HTML)", got.Text, want)
		}
	}

	t.Run("a chat message over the limit is refused", func(t *testing.T) {
		customer.send(wire.TypeChat, wire.ChatSend{Text: strings.Repeat("x", wire.MaxChatLength+1)})
		var e wire.Error
		customer.expect(wire.TypeError, &e)
		if e.Code != wire.CodeBadMessage {
			t.Fatalf("error = %+v", e)
		}
	})

	t.Run("a reconnecting customer gets the transcript again", func(t *testing.T) {
		customer.conn.Close()
		again := ts.dial(t)
		again.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL)})
		var h wire.History
		again.expect(wire.TypeHistory, &h)
		var texts []string
		for _, e := range h.Entries {
			var c wire.Chat
			if e.Type == wire.TypeChat && json.Unmarshal(e.Payload, &c) == nil {
				texts = append(texts, c.Text)
			}
		}
		if strings.Join(texts, "|") != "Two minutes, please|one|two|<b>three</b>" {
			t.Fatalf("history = %v", texts)
		}
	})

	t.Run("the transcript is in the session API", func(t *testing.T) {
		got := ts.getSession(t, s.ID)
		n := 0
		for _, e := range got.Timeline {
			if e.Type == wire.TypeChat {
				n++
			}
		}
		if n != 4 {
			t.Fatalf("timeline has %d chat entries, want 4", n)
		}
	})
}

func TestToolsAreAuthorisedByRole(t *testing.T) {
	ts := newTestServer(t)
	c := ts.startCall(t)
	one := 1.0
	stroke := &wire.Stroke{ID: "s1", Tool: "arrow", Color: "#ff0000", Width: 0.01, Points: [][2]float64{{0.1, 0.2}, {0.5, 0.6}}}
	cases := []struct {
		name    string
		typ     wire.Type
		payload any
		allowed map[string]bool // by sender role
	}{
		{"annotation", wire.TypeAnnotation, wire.AnnotationSend{Target: "video:" + c.customerID, Action: "stroke", Stroke: stroke}, map[string]bool{"specialist": true}},
		{"pointer", wire.TypePointer, wire.PointerSend{Target: "video:" + c.customerID, X: 0.5, Y: 0.5, Visible: true}, map[string]bool{"specialist": true}},
		{"camera control", wire.TypeCameraControl, wire.CameraControlSend{Command: "torch", Value: &one}, map[string]bool{"specialist": true}},
		{"snapshot request", wire.TypeSnapshotRequest, wire.Empty{}, map[string]bool{"specialist": true}},
		{"geolocation request", wire.TypeGeolocationRequest, wire.Empty{}, map[string]bool{"specialist": true}},
		{"camera capabilities", wire.TypeCameraCapabilities, wire.CameraCapabilitiesSend{CanFlip: true, Zoom: true, ZoomMin: 1, ZoomMax: 5, ZoomStep: 0.1}, map[string]bool{"customer": true}},
		{"camera control result", wire.TypeCameraControlResult, wire.CameraControlResultSend{Command: "flip", Applied: true}, map[string]bool{"customer": true}},
		{"geolocation", wire.TypeGeolocation, wire.GeolocationSend{Latitude: 48.85, Longitude: 2.35, Accuracy: 20}, map[string]bool{"customer": true}},
		{"screen share", wire.TypeScreenShare, wire.ScreenShareSend{Active: true}, map[string]bool{"customer": true, "specialist": true}},
	}
	for _, tc := range cases {
		for _, sender := range []string{"customer", "specialist"} {
			from, to := c.customer, c.specialist
			if sender == "specialist" {
				from, to = c.specialist, c.customer
			}
			verb := "is refused"
			if tc.allowed[sender] {
				verb = "is delivered"
			}
			t.Run(tc.name+" from the "+sender+" "+verb, func(t *testing.T) {
				from.send(tc.typ, tc.payload)
				if !tc.allowed[sender] {
					var e wire.Error
					from.expect(wire.TypeError, &e)
					if e.Code != wire.CodeForbidden {
						t.Fatalf("error = %+v", e)
					}
					return
				}
				// Everyone in the call gets the message, the sender too (an echo confirms it):
				// skip the echoes of earlier cases.
				for {
					var meta wire.Meta
					to.expect(tc.typ, &meta)
					if meta.From.Role == sender {
						return
					}
				}
			})
		}
	}

	t.Run("annotations arrive at the same normalised coordinates", func(t *testing.T) {
		c.specialist.send(wire.TypeAnnotation, wire.AnnotationSend{Target: "video:" + c.customerID, Action: "stroke", Stroke: stroke})
		var a wire.Annotation
		c.customer.expect(wire.TypeAnnotation, &a)
		if a.Stroke == nil || a.Stroke.Points[1] != [2]float64{0.5, 0.6} || a.Target != "video:"+c.customerID {
			t.Fatalf("annotation = %+v", a)
		}
	})

	t.Run("bad coordinates are refused", func(t *testing.T) {
		bad := *stroke
		bad.Points = [][2]float64{{0.1, 1.5}, {0, 0}}
		c.specialist.send(wire.TypeAnnotation, wire.AnnotationSend{Target: "video:x", Action: "stroke", Stroke: &bad})
		var e wire.Error
		c.specialist.expect(wire.TypeError, &e)
		if e.Code != wire.CodeBadMessage {
			t.Fatalf("error = %+v", e)
		}
	})
}

func pngImage(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func upload(t *testing.T, url, bearer string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func TestFileSharing(t *testing.T) {
	ts := newTestServer(t)
	c := ts.startCall(t)
	customerTok := linkToken(c.session.CustomerURL)
	base := ts.URL + "/v1/sessions/" + c.session.ID

	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("0123456789"), 5000)...)
	resp, body := upload(t, base+"/files?name=invoice.pdf", customerTok, pdf)
	if resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var info wire.FileInfo
	_ = json.Unmarshal(body, &info)
	if info.ContentType != "application/pdf" || info.Size != int64(len(pdf)) || info.Name != "invoice.pdf" {
		t.Fatalf("info = %+v", info)
	}

	var shared wire.FileShared
	c.specialist.expect(wire.TypeFileShared, &shared)
	if shared.File.Name != "invoice.pdf" || shared.From.Role != "customer" {
		t.Fatalf("file_shared = %+v", shared)
	}
	got, err := http.Get(shared.File.URL)
	if err != nil {
		t.Fatal(err)
	}
	downloaded, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if sha256.Sum256(downloaded) != sha256.Sum256(pdf) || got.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("download differs: %d bytes, %s", len(downloaded), got.Header.Get("Content-Type"))
	}

	cases := []struct {
		name   string
		url    string
		bearer string
		body   []byte
		want   int
	}{
		{"a program disguised as a PDF is refused", base + "/files?name=invoice.pdf", customerTok, append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...), 415},
		{"an HTML page is refused", base + "/files?name=x.txt", customerTok, []byte("<html><script>alert(1)</script></html>"), 415},
		{"a file over the limit is refused", base + "/files?name=big.pdf", customerTok, append([]byte("%PDF-1.4\n"), make([]byte, maxFileSize)...), 413},
		{"an empty file is refused", base + "/files?name=e.txt", customerTok, nil, 400},
		{"a file without a name is refused", base + "/files", customerTok, pdf, 400},
		{"no credentials are refused", base + "/files?name=a.pdf", "", pdf, 401},
		{"an API key is not a participant", base + "/files?name=a.pdf", ts.APIKey, pdf, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := upload(t, tc.url, tc.bearer, tc.body)
			if resp.StatusCode != tc.want || resp.Header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("got %d %s, want %d problem", resp.StatusCode, body, tc.want)
			}
		})
	}

	t.Run("a link of another session cannot upload here", func(t *testing.T) {
		other := ts.createSession(t)
		resp, _ := upload(t, base+"/files?name=a.pdf", linkToken(other.CustomerURL), pdf)
		if resp.StatusCode != 403 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})

	t.Run("an interrupted upload leaves nothing behind", func(t *testing.T) {
		before, _ := ts.objects.List(t.Context(), "orgs/")
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		path := "/v1/sessions/" + c.session.ID + "/files?name=cut.pdf"
		io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+customerTok+"\r\nContent-Length: 100000\r\n\r\n%PDF-1.4\n0123")
		conn.Close()
		// The server notices the cut when it reads the body; nothing is stored after it.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			after, _ := ts.objects.List(t.Context(), "orgs/")
			if len(after) != len(before) {
				t.Fatalf("objects went from %d to %d", len(before), len(after))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("a forged download link is refused", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/v1/downloads/" + customerTok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
}

func TestSnapshots(t *testing.T) {
	ts := newTestServer(t)
	c := ts.startCall(t)
	base := ts.URL + "/v1/sessions/" + c.session.ID + "/snapshots"
	photo := pngImage(t, 640, 480)

	if resp, _ := upload(t, base, linkToken(c.session.SpecialistURL), photo); resp.StatusCode != 403 {
		t.Fatalf("a specialist uploaded a snapshot of the customer's camera: %d", resp.StatusCode)
	}
	if resp, _ := upload(t, base, linkToken(c.session.CustomerURL), []byte("%PDF-1.4 not a photo")); resp.StatusCode != 415 {
		t.Fatalf("a PDF was taken as a snapshot: %d", resp.StatusCode)
	}
	resp, body := upload(t, base, linkToken(c.session.CustomerURL), photo)
	if resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var taken wire.SnapshotTaken
	c.specialist.expect(wire.TypeSnapshotTaken, &taken)
	if taken.Snapshot.Width != 640 || taken.Snapshot.Height != 480 || taken.Snapshot.URL == "" {
		t.Fatalf("snapshot = %+v", taken.Snapshot)
	}
	img, err := http.Get(taken.Snapshot.URL)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(img.Body)
	img.Body.Close()
	if !bytes.Equal(data, photo) {
		t.Fatal("the downloaded snapshot differs from the upload")
	}
	got := ts.getSession(t, c.session.ID)
	found := false
	for _, e := range got.Timeline {
		found = found || e.Type == wire.TypeSnapshotTaken
	}
	if !found {
		t.Fatal("the snapshot is not in the session's timeline")
	}
}
