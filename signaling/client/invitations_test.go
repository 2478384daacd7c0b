package client_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/client"
)

func TestInvitations(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	s, err := c.CreateSession(ctx, api.CreateSession{})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := c.Invite(ctx, s.ID, client.CreateInvitation{Kind: "expert", Name: "Dr Ext", ExpiresInSeconds: 600})
	if err != nil || inv.State != "pending" || !strings.Contains(inv.URL, "/e/") {
		t.Fatalf("invite an expert: %v %+v", err, inv)
	}
	if _, err := c.Invite(ctx, s.ID, client.CreateInvitation{Kind: "colleague"}); client.StatusOf(err) != http.StatusUnprocessableEntity {
		t.Fatalf("a colleague without a name: %v", err)
	}
	if err := c.RevokeInvitation(ctx, s.ID, inv.ID); err != nil {
		t.Fatal(err)
	}
	list, err := c.Invitations(ctx, s.ID)
	if err != nil || len(list) != 1 || list[0].State != "revoked" {
		t.Fatalf("invitations: %v %+v", err, list)
	}
	if _, err := c.HandOver(ctx, s.ID, "spe_nobody"); client.StatusOf(err) != http.StatusUnprocessableEntity {
		t.Fatalf("hand over to nobody: %v", err)
	}
}
