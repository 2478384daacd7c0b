package client_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/client"
)

func problemOf(t *testing.T, err error) *client.Problem {
	t.Helper()
	var p *client.Problem
	if !errors.As(err, &p) {
		t.Fatalf("err = %v (%T), want a *client.Problem", err, err)
	}
	return p
}

func TestNewRefusesBadBaseURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://host/?x=1"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
	c, err := client.New("http://127.0.0.1:8080/")
	if err != nil || c.BaseURL() != "http://127.0.0.1:8080" {
		t.Fatalf("New: %v %q", err, c.BaseURL())
	}
}

func TestSessions(t *testing.T) {
	n := startNode(t)
	rec := &headerRecorder{}
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey), client.WithHTTPClient(&http.Client{Transport: rec}),
		client.WithUserAgent("client-test"))
	ctx := ctxT(t)

	t.Run("a created session has links, and the idempotency key was sent", func(t *testing.T) {
		s, err := c.CreateSession(ctx, api.CreateSession{CustomerName: "Ann"}, client.IdempotencyKey("order-42"))
		if err != nil {
			t.Fatal(err)
		}
		if s.ID == "" || s.State != api.SessionWaiting || s.CustomerURL == "" || s.SpecialistURL == "" {
			t.Fatalf("session = %+v", s)
		}
		h := rec.last()
		if h.Get("Idempotency-Key") != "order-42" || h.Get("Authorization") != "Bearer "+n.APIKey ||
			h.Get("User-Agent") != "client-test" || h.Get("Content-Type") != "application/json" {
			t.Fatalf("headers = %v", h)
		}
	})

	t.Run("an idempotency key is not sent on reads", func(t *testing.T) {
		if _, err := c.ListSessions(ctx, client.PageParams{}, client.IdempotencyKey("k")); err != nil {
			t.Fatal(err)
		}
		if rec.last().Get("Idempotency-Key") != "" {
			t.Fatal("GET carried an Idempotency-Key")
		}
	})

	t.Run("a session is read, given new links and ended, once or twice", func(t *testing.T) {
		s, err := c.CreateSession(ctx, api.CreateSession{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.GetSession(ctx, s.ID)
		if err != nil || got.ID != s.ID || got.OrganizationID == "" || got.Participants == nil {
			t.Fatalf("get: %v %+v", err, got)
		}
		links, err := c.NewLinks(ctx, s.ID)
		if err != nil || links.CustomerURL == "" || links.CustomerURL == s.CustomerURL {
			t.Fatalf("links: %v %+v", err, links)
		}
		ended, err := c.EndSession(ctx, s.ID)
		if err != nil || ended.State != api.SessionEnded || ended.EndedAt == nil {
			t.Fatalf("end: %v %+v", err, ended)
		}
		again, err := c.EndSession(ctx, s.ID)
		if err != nil || again.State != api.SessionEnded {
			t.Fatalf("ending twice: %v %+v", err, again)
		}
		_, err = c.StartRecording(ctx, s.ID)
		if p := problemOf(t, err); p.Status != http.StatusConflict || p.Kind() != "invalid-state" {
			t.Fatalf("recording an ended session: %+v", p)
		}
	})

	t.Run("an unknown session is a 404 problem", func(t *testing.T) {
		_, err := c.GetSession(ctx, "ses_doesnotexist")
		p := problemOf(t, err)
		if p.Status != http.StatusNotFound || p.Kind() != "not-found" || p.Title != "Not Found" ||
			p.Detail == "" || p.Instance == "" || client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("problem = %+v", p)
		}
		if !strings.Contains(err.Error(), "404") {
			t.Fatalf("Error() = %q", err)
		}
	})

	t.Run("a wrong API key is a 401 problem", func(t *testing.T) {
		bad := newClient(t, n.URL, client.WithAPIKey("ak_wrong"))
		_, err := bad.ListSessions(ctx, client.PageParams{})
		if p := problemOf(t, err); p.Status != http.StatusUnauthorized || p.Kind() != "unauthorized" {
			t.Fatalf("problem = %+v", p)
		}
		anonymous := newClient(t, n.URL)
		_, err = anonymous.CreateSession(ctx, api.CreateSession{})
		if client.StatusOf(err) != http.StatusUnauthorized {
			t.Fatalf("no credentials: %v", err)
		}
	})

	t.Run("a bad page size is a 400 problem", func(t *testing.T) {
		_, err := c.ListSessions(ctx, client.PageParams{Limit: 1000})
		if p := problemOf(t, err); p.Status != http.StatusBadRequest || p.Kind() != "bad-parameter" {
			t.Fatalf("problem = %+v", p)
		}
	})

	t.Run("a network error is not a problem", func(t *testing.T) {
		dead := newClient(t, "http://127.0.0.1:1")
		_, err := dead.ListSessions(ctx, client.PageParams{})
		if err == nil || client.StatusOf(err) != 0 {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestListingSessionsFollowsTheCursor(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	var created []string
	for range 5 {
		s, err := c.CreateSession(ctx, api.CreateSession{})
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, s.ID)
	}

	t.Run("pages of two end with has_more false", func(t *testing.T) {
		var seen []string
		p := client.PageParams{Limit: 2}
		for pages := 1; ; pages++ {
			page, err := c.ListSessions(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Data) > 2 || pages > 3 {
				t.Fatalf("page %d: %d items", pages, len(page.Data))
			}
			for _, s := range page.Data {
				seen = append(seen, s.ID)
			}
			if !page.HasMore {
				if pages != 3 || page.NextCursor != "" {
					t.Fatalf("last page %d: %+v", pages, page)
				}
				break
			}
			p.StartingAfter = page.NextCursor
		}
		assertSameIDs(t, seen, created)
	})

	t.Run("the iterator yields every session once", func(t *testing.T) {
		var seen []string
		for s, err := range c.AllSessions(ctx, 2) {
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, s.ID)
		}
		assertSameIDs(t, seen, created)
	})

	t.Run("the iterator stops when the loop breaks", func(t *testing.T) {
		count := 0
		for _, err := range c.AllSessions(ctx, 2) {
			if err != nil {
				t.Fatal(err)
			}
			count++
			if count == 3 {
				break
			}
		}
		if count != 3 {
			t.Fatalf("count = %d", count)
		}
	})

	t.Run("the iterator yields the error", func(t *testing.T) {
		bad := newClient(t, n.URL, client.WithAPIKey("ak_wrong"))
		for _, err := range bad.AllSessions(ctx, 2) {
			if client.StatusOf(err) != http.StatusUnauthorized {
				t.Fatalf("err = %v", err)
			}
		}
	})
}

func assertSameIDs(t *testing.T, got, want []string) {
	t.Helper()
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ids = %v, want %v", got, want)
	}
}

func TestLogin(t *testing.T) {
	n := startNode(t)
	ctx := ctxT(t)
	anonymous := newClient(t, n.URL)

	t.Run("a console token works as credentials", func(t *testing.T) {
		res, err := anonymous.Login(ctx, testEmail, testPassword)
		if err != nil || res.Token == "" || !res.ExpiresAt.After(time.Now()) {
			t.Fatalf("login: %v %+v", err, res)
		}
		c := newClient(t, n.URL, client.WithToken(res.Token))
		s, err := c.CreateSession(ctx, api.CreateSession{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := anonymous.GetSession(ctx, s.ID, client.Bearer(res.Token)); err != nil {
			t.Fatalf("a per-call bearer: %v", err)
		}
	})

	t.Run("a wrong password is a 401 problem", func(t *testing.T) {
		_, err := anonymous.Login(ctx, testEmail, "wrong")
		if p := problemOf(t, err); p.Status != http.StatusUnauthorized {
			t.Fatalf("problem = %+v", p)
		}
	})
}

func TestAppointments(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	start := time.Now().Add(48 * time.Hour).Truncate(time.Minute).UTC()
	book := func(at time.Time) api.Appointment {
		t.Helper()
		a, err := c.CreateAppointment(ctx, api.CreateAppointment{Start: at, End: at.Add(30 * time.Minute),
			Customer: api.Customer{Name: "Ann", Email: "ann@example.com", Language: "en"}}, client.IdempotencyKey("booking-"+at.String()))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := book(start)
	if a.ID == "" || a.State != api.AppointmentBooked || a.SessionID == "" || a.CustomerURL == "" {
		t.Fatalf("created = %+v", a)
	}
	book(start.Add(time.Hour))
	book(start.Add(2 * time.Hour))

	t.Run("one is read back", func(t *testing.T) {
		got, err := c.GetAppointment(ctx, a.ID)
		if err != nil || got.ID != a.ID || !got.Start.Equal(start) {
			t.Fatalf("get: %v %+v", err, got)
		}
	})

	t.Run("they are listed a page at a time", func(t *testing.T) {
		page, err := c.ListAppointments(ctx, client.AppointmentFilter{State: api.AppointmentBooked,
			From: start.Add(-time.Minute), PageParams: client.PageParams{Limit: 2}})
		if err != nil || len(page.Data) != 2 || !page.HasMore || page.NextCursor == "" {
			t.Fatalf("page: %v %+v", err, page)
		}
		var all []string
		for a, err := range c.AllAppointments(ctx, client.AppointmentFilter{PageParams: client.PageParams{Limit: 2}}) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, a.ID)
		}
		if len(all) != 3 || all[0] != a.ID {
			t.Fatalf("all = %v", all)
		}
	})

	t.Run("one is moved", func(t *testing.T) {
		later, end := start.Add(24*time.Hour), start.Add(24*time.Hour+45*time.Minute)
		got, err := c.UpdateAppointment(ctx, a.ID, api.UpdateAppointment{Start: &later, End: &end})
		if err != nil || !got.Start.Equal(later) || got.Revision <= a.Revision {
			t.Fatalf("update: %v %+v", err, got)
		}
	})

	t.Run("one is cancelled, then cannot be cancelled again", func(t *testing.T) {
		got, err := c.CancelAppointment(ctx, a.ID)
		if err != nil || got.State != api.AppointmentCancelled {
			t.Fatalf("cancel: %v %+v", err, got)
		}
		_, err = c.CancelAppointment(ctx, a.ID)
		if client.StatusOf(err) != http.StatusConflict {
			t.Fatalf("second cancel: %v", err)
		}
	})

	t.Run("a bad window is a 422 problem", func(t *testing.T) {
		_, err := c.CreateAppointment(ctx, api.CreateAppointment{Start: start, End: start.Add(-time.Hour),
			Customer: api.Customer{Name: "Ann", Email: "ann@example.com"}})
		if p := problemOf(t, err); p.Status != http.StatusUnprocessableEntity || p.Detail == "" {
			t.Fatalf("problem = %+v", p)
		}
	})

	t.Run("an unknown one is a 404 problem", func(t *testing.T) {
		_, err := c.GetAppointment(ctx, "apt_nope")
		if client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRecordings(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	s, err := c.CreateSession(ctx, api.CreateSession{})
	if err != nil {
		t.Fatal(err)
	}

	r, err := c.StartRecording(ctx, s.ID, client.IdempotencyKey("rec-1"))
	if err != nil || r.ID == "" || r.SessionID != s.ID || r.State != "recording" {
		t.Fatalf("start: %v %+v", err, r)
	}
	stopped, err := c.StopRecording(ctx, s.ID, r.ID)
	if err != nil || stopped.ID != r.ID || stopped.State == "recording" || stopped.EndedAt == nil {
		t.Fatalf("stop: %v %+v", err, stopped)
	}
	eventually(t, "the recording is listed", func() bool {
		list, err := c.ListRecordings(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(list) == 1 && list[0].ID == r.ID
	})

	t.Run("stopping it again is a 404 problem", func(t *testing.T) {
		_, err := c.StopRecording(ctx, s.ID, r.ID)
		if client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("recording an unknown session is a 404 problem", func(t *testing.T) {
		_, err := c.StartRecording(ctx, "ses_nope")
		if client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("err = %v", err)
		}
		_, err = c.ListRecordings(ctx, "ses_nope")
		if client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("list: %v", err)
		}
	})
}

func TestFilesAndSnapshots(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	s, err := c.CreateSession(ctx, api.CreateSession{})
	if err != nil {
		t.Fatal(err)
	}
	startCall(t, n.URL, s)
	customer := client.Bearer(linkToken(s.CustomerURL))

	t.Run("a shared file downloads as sent", func(t *testing.T) {
		pdf := []byte("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
		info, err := c.UploadFile(ctx, s.ID, "invoice.pdf", bytes.NewReader(pdf), customer, client.IdempotencyKey("f1"))
		if err != nil || info.ID == "" || info.Name != "invoice.pdf" || info.ContentType != "application/pdf" || info.URL == "" {
			t.Fatalf("upload: %v %+v", err, info)
		}
		var got bytes.Buffer
		ct, err := c.Download(ctx, info.URL, &got)
		if err != nil || !bytes.Equal(got.Bytes(), pdf) || ct != "application/pdf" {
			t.Fatalf("download: %v %q %q", err, ct, got.String())
		}
	})

	t.Run("a snapshot is measured", func(t *testing.T) {
		var img bytes.Buffer
		if err := png.Encode(&img, image.NewRGBA(image.Rect(0, 0, 32, 24))); err != nil {
			t.Fatal(err)
		}
		info, err := c.UploadSnapshot(ctx, s.ID, &img, customer)
		if err != nil || info.Width != 32 || info.Height != 24 || info.ContentType != "image/png" || info.URL == "" {
			t.Fatalf("snapshot: %v %+v", err, info)
		}
	})

	t.Run("an API key is not a participant", func(t *testing.T) {
		_, err := c.UploadFile(ctx, s.ID, "a.txt", strings.NewReader("hello"))
		if client.StatusOf(err) != http.StatusUnauthorized {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("a disallowed type is a 415 problem", func(t *testing.T) {
		_, err := c.UploadFile(ctx, s.ID, "x.html", strings.NewReader("<html><script>1</script></html>"), customer)
		if p := problemOf(t, err); p.Status != http.StatusUnsupportedMediaType {
			t.Fatalf("problem = %+v", p)
		}
	})

	t.Run("a URL of another host is not downloaded", func(t *testing.T) {
		if _, err := c.Download(ctx, "http://example.com/v1/downloads/x", &bytes.Buffer{}); err == nil {
			t.Fatal("downloaded from another host")
		}
		_, err := c.Download(ctx, n.URL+"/v1/downloads/not-a-token", &bytes.Buffer{})
		if client.StatusOf(err) != http.StatusForbidden {
			t.Fatalf("bad token: %v", err)
		}
	})
}

func TestWebhooks(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)

	ep, err := c.CreateWebhook(ctx, client.CreateWebhook{URL: receiver.URL + "/hook", Events: []string{"session.created"}},
		client.IdempotencyKey("hook-1"))
	if err != nil || ep.ID == "" || ep.Secret == "" || !ep.Enabled {
		t.Fatalf("create: %v %+v", err, ep)
	}

	t.Run("it is listed and read without its secret", func(t *testing.T) {
		list, err := c.ListWebhooks(ctx)
		if err != nil || len(list) != 1 || list[0].ID != ep.ID || list[0].Secret != "" {
			t.Fatalf("list: %v %+v", err, list)
		}
		got, err := c.GetWebhook(ctx, ep.ID)
		if err != nil || got.URL != ep.URL || got.Secret != "" {
			t.Fatalf("get: %v %+v", err, got)
		}
	})

	t.Run("its secret is rotated", func(t *testing.T) {
		got, err := c.RotateWebhookSecret(ctx, ep.ID)
		if err != nil || got.Secret == "" || got.Secret == ep.Secret {
			t.Fatalf("rotate: %v %+v", err, got)
		}
	})

	t.Run("a session event is delivered and can be sent again", func(t *testing.T) {
		if _, err := c.CreateSession(ctx, api.CreateSession{}); err != nil {
			t.Fatal(err)
		}
		var delivery client.WebhookDelivery
		eventually(t, "a delivery is listed", func() bool {
			list, err := c.ListWebhookDeliveries(ctx, ep.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) == 0 {
				return false
			}
			delivery = list[0]
			return true
		})
		if delivery.EndpointID != ep.ID || delivery.Type != "session.created" || delivery.OrganizationID == "" {
			t.Fatalf("delivery = %+v", delivery)
		}
		if err := c.Redeliver(ctx, delivery.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.Redeliver(ctx, "whd_nope"); client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("unknown delivery: %v", err)
		}
	})

	t.Run("a bad event type is a 422 problem", func(t *testing.T) {
		_, err := c.CreateWebhook(ctx, client.CreateWebhook{URL: receiver.URL, Events: []string{"nonsense"}})
		if p := problemOf(t, err); p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("problem = %+v", p)
		}
	})

	t.Run("it is deleted", func(t *testing.T) {
		if err := c.DeleteWebhook(ctx, ep.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetWebhook(ctx, ep.ID); client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("after delete: %v", err)
		}
		if err := c.DeleteWebhook(ctx, ep.ID); client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("delete twice: %v", err)
		}
		if _, err := c.ListWebhookDeliveries(ctx, ep.ID); client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("deliveries after delete: %v", err)
		}
	})
}

func TestAuditEvents(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	var ids []string
	for range 3 {
		s, err := c.CreateSession(ctx, api.CreateSession{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	q := client.AuditQuery{Action: "session.create"}
	eventually(t, "three session.create events", func() bool {
		page, err := c.QueryAuditEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Data) == 3
	})

	t.Run("a page names the action and the session", func(t *testing.T) {
		page, err := c.QueryAuditEvents(ctx, client.AuditQuery{SessionID: ids[0]})
		if err != nil || len(page.Data) != 1 || page.Data[0].Action != "session.create" ||
			page.Data[0].Actor.Kind == "" || page.Data[0].Time.IsZero() {
			t.Fatalf("page: %v %+v", err, page)
		}
	})

	t.Run("the iterator follows the cursor", func(t *testing.T) {
		q := q
		q.Limit = 1
		var seen []string
		for ev, err := range c.AllAuditEvents(ctx, q) {
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ev.SessionID)
		}
		assertSameIDs(t, seen, ids)
	})

	t.Run("the export is NDJSON or CSV", func(t *testing.T) {
		var nd bytes.Buffer
		if err := c.ExportAuditEvents(ctx, q, client.ExportNDJSON, &nd); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(&nd)
		lines := 0
		for sc.Scan() {
			var ev client.AuditEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Action != "session.create" {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			lines++
		}
		if lines != 3 {
			t.Fatalf("%d NDJSON lines", lines)
		}
		var csv bytes.Buffer
		if err := c.ExportAuditEvents(ctx, q, client.ExportCSV, &csv); err != nil {
			t.Fatal(err)
		}
		if rows := strings.Count(strings.TrimSpace(csv.String()), "\n"); rows != 3 { // a header and three rows
			t.Fatalf("CSV:\n%s", csv.String())
		}
	})

	t.Run("a bad time is a 400 problem", func(t *testing.T) {
		err := c.ExportAuditEvents(ctx, client.AuditQuery{}, "xml", &bytes.Buffer{})
		if client.StatusOf(err) != http.StatusBadRequest {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestNodeDocumentAndHealth(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL)
	ctx := ctxT(t)
	doc, err := c.OpenAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil || !strings.HasPrefix(d.OpenAPI, "3.1") || d.Paths["/v1/sessions"] == nil {
		t.Fatalf("document: %v %s", err, d.OpenAPI)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRetryAfterIsRead(t *testing.T) {
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"type":"https://assist.dev/problems/rate-limited","title":"Too Many Requests","status":429,"detail":"slow down"}`))
	}))
	t.Cleanup(busy.Close)
	_, err := newClient(t, busy.URL).GetSession(ctxT(t), "ses_x")
	p := problemOf(t, err)
	if p.Status != http.StatusTooManyRequests || p.Kind() != "rate-limited" || p.RetryAfter != 7*time.Second {
		t.Fatalf("problem = %+v", p)
	}
}

func TestProblemsFromOtherServers(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>upstream down</html>"))
	}))
	t.Cleanup(proxy.Close)
	c := newClient(t, proxy.URL)
	_, err := c.ListSessions(ctxT(t), client.PageParams{})
	p := problemOf(t, err)
	if p.Status != http.StatusBadGateway || p.Title != "Bad Gateway" || p.Type != "about:blank" || !strings.Contains(p.Detail, "upstream down") {
		t.Fatalf("problem = %+v", p)
	}
}
