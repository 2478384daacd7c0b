package client_test

import (
	"net/http"
	"testing"

	"github.com/assist-video/assist/signaling/client"
)

// TestIdentityAndResidencyRoutes: the client reaches the identity-provider and storage-region
// routes and reports their refusals as problems. (The server's own tests cover the flows with a
// real identity provider and two MinIO regions.)
func TestIdentityAndResidencyRoutes(t *testing.T) {
	n := startNode(t)
	ctx := ctxT(t)
	admin := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	anonymous := newClient(t, n.URL)

	t.Run("an organisation without an identity provider has none to show", func(t *testing.T) {
		_, err := admin.GetIdentityProvider(ctx)
		if p := problemOf(t, err); p.Status != http.StatusNotFound {
			t.Fatalf("problem = %+v", p)
		}
	})
	t.Run("a key set on a private address is refused", func(t *testing.T) {
		_, err := admin.SetIdentityProvider(ctx, client.IdentityProvider{JWKSURL: "https://127.0.0.1:9/jwks", Issuer: "i", Audience: "a"})
		if p := problemOf(t, err); p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("problem = %+v", p)
		}
	})
	t.Run("a token for an organisation without a provider is refused", func(t *testing.T) {
		_, err := anonymous.SignInWithIdP(ctx, "org_none", "a.b.c")
		if p := problemOf(t, err); p.Status != http.StatusUnauthorized {
			t.Fatalf("problem = %+v", p)
		}
	})
	t.Run("organisations are in the default region unless pinned to a known one", func(t *testing.T) {
		org, err := admin.CreateOrganization(ctx, client.CreateOrganization{Name: "Here"})
		if err != nil || org.StorageRegion != "default" {
			t.Fatalf("%+v %v", org, err)
		}
		_, err = admin.CreateOrganization(ctx, client.CreateOrganization{Name: "There", StorageRegion: "mars"})
		if p := problemOf(t, err); p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("problem = %+v", p)
		}
		if org, err = admin.SetStorageRegion(ctx, org.ID, "default"); err != nil || org.StorageRegion != "default" {
			t.Fatalf("%+v %v", org, err)
		}
	})
}
