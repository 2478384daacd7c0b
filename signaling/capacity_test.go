package signaling

import (
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/wire"
)

// TestASessionHoldsAtMostMaxParticipants: the max-participants setting bounds a session; the
// one too many is told why, and the others are not disturbed.
func TestASessionHoldsAtMostMaxParticipants(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxParticipants = 3
	ts := startTestServer(t, cfg)
	s := ts.createSession(t)

	specialist := ts.dial(t)
	specialist.send(wire.TypeJoin, wire.Join{Token: linkToken(s.SpecialistURL), Name: "Sam"})
	specialist.expect(wire.TypeWelcome, nil)
	join := func(name string) *testSocket {
		var links api.Links
		if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/links", ts.APIKey, nil, &links); resp.StatusCode != 200 && resp.StatusCode != 201 {
			t.Fatalf("links: %d", resp.StatusCode)
		}
		c := ts.dial(t)
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		c.send(wire.TypeJoin, wire.Join{Token: linkToken(links.CustomerURL), Name: name})
		return c
	}
	join("Ann").expect(wire.TypeWaiting, nil)
	join("Bob").expect(wire.TypeWaiting, nil)
	var refused wire.Error
	join("Cat").expect(wire.TypeError, &refused)
	if refused.Code != wire.CodeInvalidState || !strings.Contains(refused.Message, "full") {
		t.Fatalf("the fourth participant got %+v, want a 'session is full' error", refused)
	}
	if got := ts.getSession(t, s.ID); len(got.Participants) != 3 {
		t.Fatalf("the session has %d participants, want 3", len(got.Participants))
	}
}
