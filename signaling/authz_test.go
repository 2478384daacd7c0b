package signaling

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
)

// Callers of the authorisation matrix.
const (
	asNobody     = "nobody"      // no credentials
	asPlatform   = "platform"    // the bootstrap key: every scope
	asKey        = "key"         // a key with the default scopes
	asSessionKey = "session-key" // a key with the sessions scope only
	asSpecialist = "specialist"
	asSupervisor = "supervisor"
	asAdmin      = "admin"
)

// everyone but nobody; the groups below are spelled out per route.
var (
	allCallers = []string{asPlatform, asKey, asSessionKey, asSpecialist, asSupervisor, asAdmin}
	staff      = []string{asPlatform, asKey, asSpecialist, asSupervisor, asAdmin}
	admins     = []string{asPlatform, asKey, asAdmin}
	auditors   = []string{asPlatform, asKey, asSupervisor, asAdmin}
	consoles   = []string{asSpecialist, asSupervisor, asAdmin} // signed-in specialists acting as themselves
)

// authorizationMatrix is the specification: for every authenticated route, who may call it.
// It is written out by hand, apart from the code's routePermissions table.
var authorizationMatrix = []struct {
	route   string // as registered
	path    string // what the test calls (ids of nothing: the answer is 404 when allowed)
	allowed []string
}{
	{"POST /v1/sessions", "/v1/sessions", allCallers},
	{"GET /v1/sessions", "/v1/sessions", allCallers},
	{"GET /v1/sessions/{id}", "/v1/sessions/ses_none", allCallers},
	{"DELETE /v1/sessions/{id}", "/v1/sessions/ses_none", admins},
	{"POST /v1/sessions/{id}/end", "/v1/sessions/ses_none/end", allCallers},
	{"POST /v1/sessions/{id}/links", "/v1/sessions/ses_none/links", allCallers},
	{"POST /v1/sessions/{id}/invitations", "/v1/sessions/ses_none/invitations", allCallers},
	{"GET /v1/sessions/{id}/invitations", "/v1/sessions/ses_none/invitations", allCallers},
	{"DELETE /v1/sessions/{id}/invitations/{iid}", "/v1/sessions/ses_none/invitations/inv_none", allCallers},
	{"POST /v1/sessions/{id}/handover", "/v1/sessions/ses_none/handover", allCallers},
	{"GET /v1/invitations", "/v1/invitations", allCallers},
	{"POST /v1/sessions/{id}/recordings", "/v1/sessions/ses_none/recordings", allCallers},
	{"GET /v1/sessions/{id}/recordings", "/v1/sessions/ses_none/recordings", allCallers},
	{"GET /v1/sessions/{id}/quality", "/v1/sessions/ses_none/quality", allCallers},
	{"POST /v1/sessions/{id}/recordings/{rid}/stop", "/v1/sessions/ses_none/recordings/rec_none/stop", allCallers},
	{"GET /v1/organization", "/v1/organization", allCallers},
	{"PATCH /v1/organization", "/v1/organization", admins},
	{"GET /v1/organization/identity-provider", "/v1/organization/identity-provider", admins},
	{"PUT /v1/organization/identity-provider", "/v1/organization/identity-provider", admins},
	{"DELETE /v1/organization/identity-provider", "/v1/organization/identity-provider", admins},
	{"POST /v1/appointments", "/v1/appointments", staff},
	{"GET /v1/appointments", "/v1/appointments", staff},
	{"GET /v1/appointments/{id}", "/v1/appointments/apt_none", staff},
	{"PATCH /v1/appointments/{id}", "/v1/appointments/apt_none", staff},
	{"DELETE /v1/appointments/{id}", "/v1/appointments/apt_none", staff},
	{"POST /v1/webhooks", "/v1/webhooks", admins},
	{"GET /v1/webhooks", "/v1/webhooks", admins},
	{"GET /v1/webhooks/{id}", "/v1/webhooks/whk_none", admins},
	{"DELETE /v1/webhooks/{id}", "/v1/webhooks/whk_none", admins},
	{"POST /v1/webhooks/{id}/rotate-secret", "/v1/webhooks/whk_none/rotate-secret", admins},
	{"GET /v1/webhooks/{id}/deliveries", "/v1/webhooks/whk_none/deliveries", admins},
	{"POST /v1/webhook-deliveries/{id}/redeliver", "/v1/webhook-deliveries/dlv_none/redeliver", admins},
	{"GET /v1/audit-events", "/v1/audit-events", auditors},
	{"GET /v1/analytics", "/v1/analytics", auditors},
	{"GET /v1/organization/seat-report", "/v1/organization/seat-report", auditors},
	{"PATCH /v1/orgs/{id}", "/v1/orgs/org_none", []string{asPlatform}},
	{"GET /v1/notification-settings", "/v1/notification-settings", admins},
	{"PUT /v1/notification-settings", "/v1/notification-settings", admins},
	{"DELETE /v1/notification-settings", "/v1/notification-settings", admins},
	{"GET /v1/specialists", "/v1/specialists", allCallers},
	{"POST /v1/specialists", "/v1/specialists", admins},
	{"GET /v1/api-keys", "/v1/api-keys", admins},
	{"POST /v1/api-keys", "/v1/api-keys", admins},
	{"DELETE /v1/api-keys/{id}", "/v1/api-keys/key_none", admins},
	{"GET /v1/orgs", "/v1/orgs", []string{asPlatform}},
	{"POST /v1/orgs", "/v1/orgs", []string{asPlatform}},
	{"POST /v1/signing-keys/rotate", "/v1/signing-keys/rotate", []string{asPlatform}},
	{"GET /v1/presence", "/v1/presence", allCallers},
	{"PUT /v1/presence/me", "/v1/presence/me", consoles},
	{"GET /v1/team/messages", "/v1/team/messages", consoles},
	{"POST /v1/team/messages", "/v1/team/messages", consoles},
	{"PUT /v1/team/read", "/v1/team/read", consoles},
	{"GET /v1/queue", "/v1/queue", allCallers},
	{"POST /v1/sessions/{id}/transfer", "/v1/sessions/ses_none/transfer", allCallers},
	{"GET /v1/video-messages", "/v1/video-messages", allCallers},
	{"GET /v1/video-messages/{id}", "/v1/video-messages/vm_none", allCallers},
	{"PATCH /v1/video-messages/{id}", "/v1/video-messages/vm_none", allCallers},
	{"DELETE /v1/video-messages/{id}", "/v1/video-messages/vm_none", admins},
	{"POST /v1/video-messages/{id}/call-back", "/v1/video-messages/vm_none/call-back", allCallers},
	{"GET /v1/sessions/{id}/emergency", "/v1/sessions/ses_none/emergency", allCallers},
	{"POST /v1/sessions/{id}/emergency", "/v1/sessions/ses_none/emergency", allCallers},
}

// publicRoutes need no API key or console token (links, signed URLs or nothing).
var publicRoutes = []string{"GET /v1/signal", "GET /v1/staff", "POST /v1/auth/login", "POST /v1/auth/idp", "POST /v1/sessions/{id}/files",
	"POST /v1/sessions/{id}/snapshots", "GET /v1/downloads/{token}", "GET /v1/openapi.json", "/v1/",
	"GET /v1/echo", "POST /v1/sessions/{id}/video-messages"}

// matrixCallers makes one bearer per caller of the matrix.
func matrixCallers(t *testing.T, ts *testServer) map[string]string {
	t.Helper()
	ctx := context.Background()
	org, err := ts.rooms.Organization(ctx, ts.Bootstrap().OrganizationID)
	if err != nil {
		t.Fatal(err)
	}
	bearers := map[string]string{asNobody: "", asPlatform: ts.APIKey}
	for name, scopes := range map[string][]string{asKey: nil, asSessionKey: {rooms.ScopeSessions}} {
		key := auth.NewAPIKey()
		if _, err := ts.rooms.AddAPIKey(ctx, org.ID, name, auth.HashAPIKey(key), scopes); err != nil {
			t.Fatal(err)
		}
		bearers[name] = key
	}
	for name, role := range map[string]rooms.StaffRole{asSpecialist: rooms.StaffSpecialist, asSupervisor: rooms.StaffSupervisor, asAdmin: rooms.StaffAdmin} {
		hash, _ := auth.HashPassword("a long password " + name)
		sp, err := ts.rooms.CreateSpecialist(ctx, org.ID, "matrix-"+name+"@example.com", name, hash, role)
		if err != nil {
			t.Fatal(err)
		}
		token, _, err := ts.issuer.IssueConsole(org.ID, sp.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		bearers[name] = token
	}
	return bearers
}

func TestAuthorizationMatrix(t *testing.T) {
	ts := newTestServer(t)
	bearers := matrixCallers(t, ts)

	t.Run("the matrix covers every route the server registers under /v1", func(t *testing.T) {
		covered := map[string]bool{}
		for _, row := range authorizationMatrix {
			covered[row.route] = true
			if _, ok := routePermissions[row.route]; !ok {
				t.Errorf("%s is in the matrix but has no permission in the code", row.route)
			}
		}
		for _, p := range ts.patterns {
			if strings.Contains(p, "/v1/") && !covered[p] && !slices.Contains(publicRoutes, p) {
				t.Errorf("%s is registered but not in the matrix", p)
			}
		}
		for route := range routePermissions {
			if !covered[route] {
				t.Errorf("%s has a permission but no row in the matrix", route)
			}
		}
	})

	for _, row := range authorizationMatrix {
		method, _, _ := strings.Cut(row.route, " ")
		for _, who := range append([]string{asNobody}, allCallers...) {
			allowed := slices.Contains(row.allowed, who)
			verdict := "is refused"
			if allowed {
				verdict = "is allowed"
			}
			t.Run(row.route+" by "+who+" "+verdict, func(t *testing.T) {
				var body any
				if method == "POST" || method == "PATCH" || method == "PUT" {
					body = struct{}{}
				}
				resp := ts.do(t, method, row.path, bearers[who], body, nil)
				switch {
				case who == asNobody && resp.StatusCode != http.StatusUnauthorized:
					t.Fatalf("without credentials: %d, want 401", resp.StatusCode)
				case who != asNobody && allowed && (resp.StatusCode == 401 || resp.StatusCode == 403):
					t.Fatalf("%d, want it allowed", resp.StatusCode)
				case who != asNobody && !allowed && resp.StatusCode != http.StatusForbidden:
					t.Fatalf("%d, want 403", resp.StatusCode)
				}
			})
		}
	}
}

// TestNoOrganisationReachesAnother: a key with every scope of another organisation gets 404
// for each of this organisation's resources, and its lists show none of them.
func TestNoOrganisationReachesAnother(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	sess := ts.createSession(t)
	apt := ts.book(t, time.Now().Add(time.Hour))
	var hook struct {
		ID string `json:"id"`
	}
	if resp := ts.do(t, "POST", "/v1/webhooks", ts.APIKey, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"session.created"}}, &hook); resp.StatusCode != 201 {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	var keys struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	ts.do(t, "GET", "/v1/api-keys", ts.APIKey, nil, &keys)
	if len(keys.Data) == 0 {
		t.Fatal("no keys listed")
	}

	other, err := ts.rooms.CreateOrganization(ctx, "Other")
	if err != nil {
		t.Fatal(err)
	}
	otherKey := auth.NewAPIKey()
	if _, err := ts.rooms.AddAPIKey(ctx, other.ID, "other", auth.HashAPIKey(otherKey), rooms.DefaultScopes()); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/sessions/" + sess.ID},
		{"POST", "/v1/sessions/" + sess.ID + "/end"},
		{"POST", "/v1/sessions/" + sess.ID + "/links"},
		{"POST", "/v1/sessions/" + sess.ID + "/recordings"},
		{"GET", "/v1/sessions/" + sess.ID + "/recordings"},
		{"DELETE", "/v1/sessions/" + sess.ID},
		{"GET", "/v1/appointments/" + apt.ID},
		{"PATCH", "/v1/appointments/" + apt.ID},
		{"DELETE", "/v1/appointments/" + apt.ID},
		{"GET", "/v1/webhooks/" + hook.ID},
		{"GET", "/v1/webhooks/" + hook.ID + "/deliveries"},
		{"POST", "/v1/webhooks/" + hook.ID + "/rotate-secret"},
		{"DELETE", "/v1/webhooks/" + hook.ID},
		{"DELETE", "/v1/api-keys/" + keys.Data[0].ID},
	} {
		var body any
		if r.method == "PATCH" {
			start := time.Now().Add(2 * time.Hour).UTC()
			body = api.UpdateAppointment{Start: &start, End: new(start.Add(30 * time.Minute))}
		}
		if resp := ts.do(t, r.method, r.path, otherKey, body, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s from another organisation: %d, want 404", r.method, r.path, resp.StatusCode)
		}
	}
	// Everything is still there for its owner.
	ts.getSession(t, sess.ID)
	if resp := ts.do(t, "GET", "/v1/webhooks/"+hook.ID, ts.APIKey, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("the webhook is gone: %d", resp.StatusCode)
	}
	for _, list := range []string{"/v1/sessions", "/v1/appointments", "/v1/webhooks", "/v1/api-keys", "/v1/specialists", "/v1/audit-events"} {
		var page struct {
			Data []map[string]any `json:"data"`
		}
		ts.do(t, "GET", list, otherKey, nil, &page)
		for _, item := range page.Data {
			for _, field := range []string{"organization_id", "org_id"} {
				if v, ok := item[field]; ok && v != other.ID {
					t.Errorf("%s from another organisation shows an item of %v", list, v)
				}
			}
			if id, _ := item["id"].(string); id == sess.ID || id == apt.ID || id == hook.ID {
				t.Errorf("%s from another organisation shows %s", list, id)
			}
		}
	}
	var got api.Session
	ts.do(t, "GET", "/v1/sessions/"+sess.ID, ts.APIKey, nil, &got)
	if got.State == "ended" {
		t.Fatal("another organisation ended the session")
	}
}
