package signaling

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/problem"
)

func TestOperatorEndpoints(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/livez", "/healthz", "/readyz", "/metrics"} {
		resp := ts.do(t, "GET", path, "", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s = %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"assist_signaling_sockets", "assist_sfu_peers", "assist_http_requests_total", "go_goroutines"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestAPIAuthentication(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		name   string
		bearer string
		want   int
	}{
		{"no credentials are refused", "", http.StatusUnauthorized},
		{"a wrong API key is refused", "ak_wrong", http.StatusUnauthorized},
		{"a session link is not an API credential", "", http.StatusUnauthorized},
		{"the API key is accepted", testAPIKey, http.StatusCreated},
	}
	link := linkToken(ts.createSession(t).SpecialistURL)
	cases[2].bearer = link
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p problem.Details
			resp := ts.do(t, "POST", "/v1/sessions", c.bearer, nil, &p)
			if resp.StatusCode != c.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, c.want)
			}
			if c.want == http.StatusUnauthorized {
				if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType || p.Status != 401 || p.Detail == "" {
					t.Fatalf("not a problem document: %s %+v", ct, p)
				}
			}
		})
	}
}

func TestConsoleSignIn(t *testing.T) {
	ts := newTestServer(t)
	var bad problem.Details
	if resp := ts.do(t, "POST", "/v1/auth/login", "", api.Login{Email: testEmail, Password: "wrong password"}, &bad); resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	var login api.LoginResult
	if resp := ts.do(t, "POST", "/v1/auth/login", "", api.Login{Email: testEmail, Password: testPassword}, &login); resp.StatusCode != 200 || login.Token == "" {
		t.Fatalf("sign-in: %d %+v", resp.StatusCode, login)
	}
	if time.Until(login.ExpiresAt) > 9*time.Hour {
		t.Errorf("console token lives too long: %v", login.ExpiresAt)
	}
	var s api.Session
	if resp := ts.do(t, "POST", "/v1/sessions", login.Token, nil, &s); resp.StatusCode != 201 {
		t.Fatalf("create with console token: %d", resp.StatusCode)
	}
	var list api.SessionList
	ts.do(t, "GET", "/v1/sessions", login.Token, nil, &list)
	if len(list.Data) != 1 || list.Data[0].ID != s.ID {
		t.Fatalf("list = %+v", list)
	}
}

func TestBadRequestsGetProblems(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		name, method, path string
		body               string
		want               int
	}{
		{"an unknown session is not found", "GET", "/v1/sessions/ses_nope", "", 404},
		{"a malformed id is not found", "GET", "/v1/sessions/..%2F..", "", 404},
		{"a bad JSON body is a bad request", "POST", "/v1/sessions", "{", 400},
		{"an unknown field is a bad request", "POST", "/v1/sessions", `{"colour":"red"}`, 400},
		{"a bad page size is a bad request", "GET", "/v1/sessions?limit=1000", "", 400},
		{"an unknown route is not found", "GET", "/v1/teleport", "", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+testAPIKey)
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want || resp.Header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("got %d %s, want %d problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), c.want)
			}
		})
	}
}

func TestOrganisationsCannotSeeEachOther(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	other, err := ts.rooms.CreateOrganization(ctx, "Other")
	if err != nil {
		t.Fatal(err)
	}
	otherKey := auth.NewAPIKey()
	if _, err := ts.rooms.AddAPIKey(ctx, other.ID, "k", auth.HashAPIKey(otherKey), nil); err != nil {
		t.Fatal(err)
	}
	mine := ts.createSession(t)
	if resp := ts.do(t, "GET", "/v1/sessions/"+mine.ID, otherKey, nil, nil); resp.StatusCode != 404 {
		t.Errorf("other org reads my session: %d", resp.StatusCode)
	}
	if resp := ts.do(t, "POST", "/v1/sessions/"+mine.ID+"/end", otherKey, nil, nil); resp.StatusCode != 404 {
		t.Errorf("other org ends my session: %d", resp.StatusCode)
	}
	var list api.SessionList
	ts.do(t, "GET", "/v1/sessions", otherKey, nil, &list)
	if len(list.Data) != 0 {
		t.Errorf("other org lists my sessions: %+v", list.Data)
	}
}

func TestLinkPages(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSession(t)
	ended := ts.createSession(t)
	ts.do(t, "POST", "/v1/sessions/"+ended.ID+"/end", ts.APIKey, nil, nil)

	expiredIssuer := ts.issuer.At(func() time.Time { return time.Now().Add(-48 * time.Hour) })
	expired, _, _ := expiredIssuer.IssueLink(s.OrganizationID, s.ID, auth.RoleCustomer, time.Hour)

	customer := linkToken(s.CustomerURL)
	cases := []struct {
		name string
		path string
		want int
		text string
	}{
		{"a customer link opens the customer page", "/c/" + customer, 200, "customer"},
		{"a specialist link opens the console", "/s/" + linkToken(s.SpecialistURL), 200, "console"},
		{"a tampered link gets a clear page", "/c/" + customer[:len(customer)-2] + "xx", 401, "not valid"},
		{"an expired link says so", "/c/" + expired, 410, "expired"},
		{"a customer link cannot open the console", "/s/" + customer, 403, "not for this page"},
		{"an ended session says so", "/c/" + linkToken(ended.CustomerURL), 410, "ended"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Get(ts.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want || !strings.Contains(strings.ToLower(string(body)), c.text) {
				t.Fatalf("got %d, want %d with %q:\n%.400s", resp.StatusCode, c.want, c.text, body)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Content-Security-Policy") == "" {
				t.Fatalf("not a secured HTML page: %v", resp.Header)
			}
		})
	}
}
