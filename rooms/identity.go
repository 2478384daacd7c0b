package rooms

// IdentityProvider is an organisation's own identity provider (OpenID Connect or any issuer of
// signed JWTs with a JWKS): Assist trusts its tokens for the organisation's specialists.
type IdentityProvider struct {
	// JWKSURL is where the provider publishes its public keys (a JSON Web Key Set).
	JWKSURL string `json:"jwks_url"`
	// Issuer and Audience must match the token's iss and aud exactly.
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// EmailClaim names the claim holding the specialist's email; empty is "email".
	EmailClaim string `json:"email_claim,omitempty"`
	// Algorithms are the signature algorithms accepted (RS256, ES256, EdDSA, ...); empty is
	// DefaultIdPAlgorithms().
	Algorithms []string `json:"algorithms,omitempty"`
}

// DefaultIdPAlgorithms are the algorithms an identity provider's tokens may use unless the
// organisation narrows them.
func DefaultIdPAlgorithms() []string { return []string{"RS256", "ES256", "EdDSA"} }
