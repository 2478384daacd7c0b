package client_test

import (
	"net/http"
	"testing"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/client"
)

// TestAdminAPI manages API keys, specialists and organisations through the client.
func TestAdminAPI(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)

	t.Run("an API key is created, listed, used and revoked", func(t *testing.T) {
		k, err := c.CreateAPIKey(ctx, client.CreateAPIKey{Name: "ci"}, client.IdempotencyKey("key-ci"))
		if err != nil || k.ID == "" || k.Key == "" || k.Name != "ci" {
			t.Fatalf("create: %v %+v", err, k)
		}
		found := false
		for got, err := range c.AllAPIKeys(ctx, 1) {
			if err != nil {
				t.Fatal(err)
			}
			if got.Key != "" {
				t.Fatalf("a listed key shows its secret: %+v", got)
			}
			found = found || got.ID == k.ID
		}
		if !found {
			t.Fatal("the new key is not listed")
		}
		withKey := newClient(t, n.URL, client.WithAPIKey(k.Key))
		if _, err := withKey.CreateSession(ctx, api.CreateSession{}); err != nil {
			t.Fatalf("the new key does not work: %v", err)
		}
		if err := c.RevokeAPIKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := withKey.CreateSession(ctx, api.CreateSession{}); client.StatusOf(err) != http.StatusUnauthorized {
			t.Fatalf("a revoked key still works: %v", err)
		}
		if err := c.RevokeAPIKey(ctx, k.ID); client.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("revoke twice: %v", err)
		}
	})

	t.Run("a specialist is created, listed and signs in", func(t *testing.T) {
		sp, err := c.CreateSpecialist(ctx, client.CreateSpecialist{Email: "bea@example.com", Name: "Bea"})
		if err != nil || sp.ID == "" || sp.Password == "" {
			t.Fatalf("create: %v %+v", err, sp)
		}
		found := false
		for got, err := range c.AllSpecialists(ctx, 0) {
			if err != nil {
				t.Fatal(err)
			}
			found = found || got.ID == sp.ID
		}
		if !found {
			t.Fatal("the new specialist is not listed")
		}
		if _, err := c.Login(ctx, sp.Email, sp.Password); err != nil {
			t.Fatalf("sign in: %v", err)
		}
		_, err = c.CreateSpecialist(ctx, client.CreateSpecialist{Email: "bea@example.com", Name: "Bea again"})
		if client.StatusOf(err) != http.StatusConflict {
			t.Fatalf("same email twice: %v", err)
		}
	})

	t.Run("organisations are the platform administrator's", func(t *testing.T) {
		o, err := c.CreateOrganization(ctx, client.CreateOrganization{Name: "Acme"})
		if err != nil || o.ID == "" || o.Name != "Acme" {
			t.Fatalf("create: %v %+v", err, o)
		}
		list, err := c.ListOrganizations(ctx, client.PageParams{Limit: 100})
		if err != nil || len(list.Data) < 2 {
			t.Fatalf("list: %v %+v", err, list)
		}
		// A key of that organisation, made by the platform administrator, sees only it.
		k, err := c.CreateAPIKey(ctx, client.CreateAPIKey{Name: "acme", OrganizationID: o.ID, Scopes: []string{"sessions"}})
		if err != nil || k.OrganizationID != o.ID {
			t.Fatalf("key for acme: %v %+v", err, k)
		}
		acme := newClient(t, n.URL, client.WithAPIKey(k.Key))
		if _, err := acme.ListOrganizations(ctx, client.PageParams{}); client.StatusOf(err) != http.StatusForbidden {
			t.Fatalf("an organisation's key listed organisations: %v", err)
		}
		if _, err := acme.CreateAPIKey(ctx, client.CreateAPIKey{Name: "more"}); client.StatusOf(err) != http.StatusForbidden {
			t.Fatalf("a sessions-only key made a key: %v", err)
		}
	})
}
