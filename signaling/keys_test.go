package signaling

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/signaling/api"
)

// kidOf reads the key id from a JWT's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	data, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(data, &h)
	return h.Kid
}

// waitCurrentKey waits until this node's issuer follows the shared key ring to kid.
func (ts *testServer) waitCurrentKey(t *testing.T, kid string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ts.issuer.CurrentKeyID() != kid {
		if time.Now().After(deadline) {
			t.Fatalf("the node still signs with %s, want %s", ts.issuer.CurrentKeyID(), kid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSigningKeysRotateWithoutDowntime(t *testing.T) {
	ts := newTestServer(t)
	login := func() string {
		var res api.LoginResult
		if resp := ts.do(t, "POST", "/v1/auth/login", "", api.Login{Email: testEmail, Password: testPassword}, &res); resp.StatusCode != 200 {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		return res.Token
	}
	works := func(token string) bool {
		return ts.do(t, "GET", "/v1/sessions", token, nil, nil).StatusCode == http.StatusOK
	}
	before := login()
	session := ts.createSession(t)
	oldKid := kidOf(t, before)

	var rotated struct {
		CurrentKeyID string   `json:"current_key_id"`
		AcceptedIDs  []string `json:"accepted_key_ids"`
	}
	if resp := ts.do(t, "POST", "/v1/signing-keys/rotate", ts.APIKey, nil, &rotated); resp.StatusCode != 200 {
		t.Fatalf("rotate: %d", resp.StatusCode)
	}
	if rotated.CurrentKeyID == oldKid || len(rotated.AcceptedIDs) != 2 {
		t.Fatalf("rotate = %+v (old key %s)", rotated, oldKid)
	}
	ts.waitCurrentKey(t, rotated.CurrentKeyID)

	after := login()
	if kidOf(t, after) != rotated.CurrentKeyID {
		t.Fatalf("a new sign-in is signed with %s, want %s", kidOf(t, after), rotated.CurrentKeyID)
	}
	if !works(before) || !works(after) {
		t.Fatal("a sign-in from before or after the rotation stopped working")
	}
	if resp, err := http.Get(session.CustomerURL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a link from before the rotation no longer opens: %v %v", err, resp)
	}

	// Much later, another rotation drops the key retired longer ago than the retention.
	ring, err := ts.rotateSigningKey(context.Background(), time.Now().Add(ts.cfg.SigningKeyRetention+time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ts.waitCurrentKey(t, ring.Current.ID)
	if works(before) {
		t.Fatal("a token signed with a dropped key still works")
	}
	if !works(after) {
		t.Fatal("a token signed with the recently retired key stopped working")
	}
	if resp, _ := http.Get(session.CustomerURL); resp.StatusCode == 200 {
		t.Fatal("a link signed with a dropped key still opens")
	}
}
