package client

import (
	"context"
	"net/http"

	"github.com/assist-video/assist/signaling/api"
)

// Single sign-on through an organisation's own identity provider, and where an organisation's
// objects are stored (data residency).

// IdentityProvider is an organisation's identity provider: Assist exchanges its signed tokens
// (verified against the JWKS at JWKSURL) for console tokens of the organisation's specialists.
type IdentityProvider struct {
	JWKSURL    string   `json:"jwks_url"`
	Issuer     string   `json:"issuer"`
	Audience   string   `json:"audience"`
	EmailClaim string   `json:"email_claim,omitempty"` // default "email"
	Algorithms []string `json:"algorithms,omitempty"`  // default RS256, ES256, EdDSA
}

// SignInWithIdP exchanges a token of the organisation's identity provider for a console token.
// The token's email must be an existing specialist's of that organisation.
func (c *Client) SignInWithIdP(ctx context.Context, organizationID, token string) (api.LoginResult, error) {
	var out api.LoginResult
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/auth/idp",
		in: struct {
			OrganizationID string `json:"organization_id"`
			Token          string `json:"token"`
		}{organizationID, token}}, &out)
	return out, err
}

// GetIdentityProvider returns the caller's organisation's identity provider (404 if none).
func (c *Client) GetIdentityProvider(ctx context.Context, opts ...CallOption) (IdentityProvider, error) {
	var out IdentityProvider
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/organization/identity-provider", opts: opts}, &out)
	return out, err
}

// SetIdentityProvider trusts an identity provider for the caller's organisation; the server
// fetches its key set at once and refuses settings it cannot use.
func (c *Client) SetIdentityProvider(ctx context.Context, in IdentityProvider, opts ...CallOption) (IdentityProvider, error) {
	var out IdentityProvider
	err := c.call(ctx, request{method: http.MethodPut, path: "/v1/organization/identity-provider", in: in, opts: opts}, &out)
	return out, err
}

// DeleteIdentityProvider stops trusting the caller's organisation's identity provider.
func (c *Client) DeleteIdentityProvider(ctx context.Context, opts ...CallOption) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/v1/organization/identity-provider", opts: opts}, nil)
}

// SetStorageRegion pins an organisation's objects to a storage region of the node ("default"
// or a name of its storage-regions setting). Refused (409) while the organisation has objects.
func (c *Client) SetStorageRegion(ctx context.Context, organizationID, region string, opts ...CallOption) (Organization, error) {
	var out Organization
	err := c.call(ctx, request{method: http.MethodPatch, path: "/v1/orgs/" + segment(organizationID),
		in: struct {
			StorageRegion string `json:"storage_region"`
		}{region}, opts: opts}, &out)
	return out, err
}
