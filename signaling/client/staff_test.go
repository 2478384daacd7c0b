package client_test

import (
	"net/http"
	"testing"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/client"
	"github.com/assist-video/assist/signaling/wire"
)

func TestPresenceQueueAndTransfer(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	sp, err := c.CreateSpecialist(ctx, client.CreateSpecialist{Email: "tess@example.com", Name: "Tess"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Presence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range list {
		if e.SpecialistID == sp.ID {
			found = e.Status == "offline"
		}
	}
	if !found {
		t.Fatalf("a specialist who never opened the console is offline: %+v", list)
	}

	s, err := c.CreateSession(ctx, api.CreateSession{})
	if err != nil {
		t.Fatal(err)
	}
	customer := dial(t, n.URL)
	customer.send(wire.TypeJoin, wire.Join{Token: linkToken(s.CustomerURL), Name: "Carl"})
	customer.expect(wire.TypeWaiting, nil)
	q, err := c.Queue(ctx)
	if err != nil || len(q) != 1 || q[0].Name != "Carl" || q[0].SessionID != s.ID || q[0].Kind != "ad_hoc" {
		t.Fatalf("queue: %v %+v", err, q)
	}
	a, err := c.TransferSession(ctx, s.ID, sp.ID)
	if err != nil || a.AssignedTo != sp.ID || a.AssignedAt == nil {
		t.Fatalf("transfer: %v %+v", err, a)
	}
	if q, _ := c.Queue(ctx); len(q) != 1 || q[0].AssignedTo != sp.ID || q[0].AssignedToName != "Tess" {
		t.Fatalf("queue after the transfer: %+v", q)
	}
	if _, err := c.TransferSession(ctx, s.ID, "spc_nobody"); client.StatusOf(err) != http.StatusUnprocessableEntity {
		t.Fatalf("a transfer to nobody: %v", err)
	}
}
