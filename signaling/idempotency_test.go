package signaling

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/assist-video/assist/signaling/api"
)

// post sends a POST with an Idempotency-Key.
func (ts *testServer) post(t *testing.T, path, idemKey string, body any) (*http.Response, []byte) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", ts.URL+path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+ts.APIKey)
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func TestIdempotencyKeyCreatesOnce(t *testing.T) {
	ts := newTestServer(t)
	count := func() int {
		var list api.SessionList
		ts.do(t, "GET", "/v1/sessions?limit=100", ts.APIKey, nil, &list)
		return len(list.Data)
	}

	first, firstBody := ts.post(t, "/v1/sessions", "order-1234", api.CreateSession{})
	again, againBody := ts.post(t, "/v1/sessions", "order-1234", api.CreateSession{})
	if first.StatusCode != 201 || again.StatusCode != 201 || !bytes.Equal(firstBody, againBody) {
		t.Fatalf("retry answered %d %s, first %d %s", again.StatusCode, againBody, first.StatusCode, firstBody)
	}
	if again.Header.Get("Idempotent-Replayed") != "true" || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the replay is not marked as one")
	}
	if n := count(); n != 1 {
		t.Fatalf("%d sessions after a retried create, want 1", n)
	}

	t.Run("the same key with another body is refused", func(t *testing.T) {
		resp, body := ts.post(t, "/v1/sessions", "order-1234", api.CreateSession{CustomerName: "someone else"})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("another key creates another", func(t *testing.T) {
		if resp, _ := ts.post(t, "/v1/sessions", "order-5678", api.CreateSession{}); resp.StatusCode != 201 || count() != 2 {
			t.Fatalf("%d, %d sessions", resp.StatusCode, count())
		}
	})
	t.Run("no key creates every time", func(t *testing.T) {
		ts.post(t, "/v1/sessions", "", api.CreateSession{})
		ts.post(t, "/v1/sessions", "", api.CreateSession{})
		if n := count(); n != 4 {
			t.Fatalf("%d sessions, want 4", n)
		}
	})
	t.Run("concurrent retries create one", func(t *testing.T) {
		before := count()
		var wg sync.WaitGroup
		statuses := make(chan int, 8)
		for range 8 {
			wg.Go(func() {
				resp, _ := ts.post(t, "/v1/sessions", "burst", api.CreateSession{})
				statuses <- resp.StatusCode
			})
		}
		wg.Wait()
		close(statuses)
		for s := range statuses {
			if s != 201 && s != http.StatusConflict {
				t.Errorf("status %d, want 201 or 409 (in progress)", s)
			}
		}
		if n := count(); n != before+1 {
			t.Fatalf("%d sessions created by one burst, want 1", n-before)
		}
	})
	t.Run("a bad key is refused", func(t *testing.T) {
		if resp, _ := ts.post(t, "/v1/sessions", strings.Repeat("k", 300), api.CreateSession{}); resp.StatusCode != 400 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
}

func TestOrganizationETag(t *testing.T) {
	ts := newTestServer(t)
	get := func(ifNoneMatch string) *http.Response {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/organization", nil)
		req.Header.Set("Authorization", "Bearer "+ts.APIKey)
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	patch := func(ifMatch string, policy map[string]any) *http.Response {
		data, _ := json.Marshal(map[string]any{"policy": policy})
		req, _ := http.NewRequest("PATCH", ts.URL+"/v1/organization", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+ts.APIKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("If-Match", ifMatch)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	tag := get("").Header.Get("ETag")
	if tag == "" {
		t.Fatal("no ETag")
	}
	if resp := get(tag); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match with the current tag: %d", resp.StatusCode)
	}
	changed := patch(tag, map[string]any{"retention_days": 7})
	if changed.StatusCode != 200 || changed.Header.Get("ETag") == tag {
		t.Fatalf("PATCH with the current tag: %d, tag %q", changed.StatusCode, changed.Header.Get("ETag"))
	}
	if resp := patch(tag, map[string]any{"retention_days": 1}); resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("PATCH with a stale tag: %d, want 412", resp.StatusCode)
	}
	var org organizationView
	ts.do(t, "GET", "/v1/organization", ts.APIKey, nil, &org)
	if org.Policy.RetentionDays != 7 {
		t.Fatalf("the stale PATCH changed the policy: %+v", org.Policy)
	}
	if resp := get(tag); resp.StatusCode != 200 {
		t.Fatalf("If-None-Match with an old tag: %d", resp.StatusCode)
	}
}

func TestSeatsAreCountedAndReported(t *testing.T) {
	ts := newTestServer(t)
	var org organizationView
	ts.do(t, "GET", "/v1/organization", ts.APIKey, nil, &org)
	if org.Seats == nil || org.Seats.Licensed != 0 || org.Seats.Used != 1 || org.Seats.Over {
		t.Fatalf("seats of the bootstrap organisation = %+v, want 1 used, unlimited", org.Seats)
	}
	patch := func(seats any) *http.Response {
		return ts.do(t, "PATCH", "/v1/orgs/"+org.ID, ts.APIKey, map[string]any{"seats": seats}, nil)
	}
	if resp := patch(-1); resp.StatusCode != 422 {
		t.Fatalf("negative seats: %d", resp.StatusCode)
	}
	if resp := patch(1); resp.StatusCode != 200 {
		t.Fatalf("set seats: %d", resp.StatusCode)
	}
	for _, email := range []string{"a@example.com", "b@example.com"} {
		if resp := ts.do(t, "POST", "/v1/specialists", ts.APIKey, createSpecialist{Email: email, Name: "S"}, nil); resp.StatusCode != 201 {
			t.Fatalf("going over the licence must be allowed: %d", resp.StatusCode)
		}
	}
	ts.do(t, "GET", "/v1/organization", ts.APIKey, nil, &org)
	if *org.Seats != (seatsView{Licensed: 1, Used: 3, Over: true}) {
		t.Fatalf("seats = %+v", *org.Seats)
	}
	var rep seatReport
	if resp := ts.do(t, "GET", "/v1/organization/seat-report", ts.APIKey, nil, &rep); resp.StatusCode != 200 ||
		rep.Licensed != 1 || rep.PeakUsed != 3 || rep.Overage != 2 {
		t.Fatalf("report: %d %+v", resp.StatusCode, rep)
	}
	ts.do(t, "GET", "/v1/organization/seat-report?month=2020-01", ts.APIKey, nil, &rep)
	if rep.Month != "2020-01" || rep.PeakUsed != 0 || rep.Overage != 0 {
		t.Fatalf("a month before anyone existed: %+v", rep)
	}
	if resp := ts.do(t, "GET", "/v1/organization/seat-report?month=Nov", ts.APIKey, nil, nil); resp.StatusCode != 400 {
		t.Fatalf("a bad month: %d", resp.StatusCode)
	}
}
