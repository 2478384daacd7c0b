package client_test

import (
	"net/http"
	"testing"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/client"
)

func TestSessionQuality(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	s, err := c.CreateSession(ctx, api.CreateSession{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.SessionQuality(ctx, s.ID, "")
	if err != nil || q.SessionID != s.ID || q.Samples == nil || len(q.Samples) != 0 || q.Summary.Samples != 0 {
		t.Fatalf("a session without a call: %v %+v", err, q)
	}
	if _, err := c.SessionQuality(ctx, s.ID, "mos"); client.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("a bad source: %v", err)
	}
	if _, err := c.SessionQuality(ctx, "ses_nope", "sfu"); client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("an unknown session: %v", err)
	}
}
