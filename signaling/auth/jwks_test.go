package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testIdP is an identity provider made up in the test: an RSA, an EC and an Ed25519 key.
type testIdP struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testIdP{rsa: rk, ec: ek, ed: dk}
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (p *testIdP) jwks() []byte {
	ecx, ecy := p.ec.X.FillBytes(make([]byte, 32)), p.ec.Y.FillBytes(make([]byte, 32))
	doc := map[string][]map[string]string{"keys": {
		{"kty": "RSA", "kid": "r1", "use": "sig", "n": enc(p.rsa.N.Bytes()), "e": enc(big.NewInt(int64(p.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": enc(ecx), "y": enc(ecy)},
		{"kty": "OKP", "kid": "d1", "crv": "Ed25519", "x": enc(p.ed.Public().(ed25519.PublicKey))},
		{"kty": "RSA", "kid": "enc", "use": "enc", "n": enc(p.rsa.N.Bytes()), "e": "AQAB"},
	}}
	data, _ := json.Marshal(doc)
	return data
}

func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyIdP(t *testing.T) {
	idp := newTestIdP(t)
	other := newTestIdP(t)
	set, err := ParseJWKS(idp.jwks())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set["enc"]; ok || len(set) != 3 {
		t.Fatalf("parsed keys %v: want r1, e1, d1 and not the encryption key", set)
	}
	lookup := func(kid string) (PublicKey, error) {
		k, ok := set[kid]
		if !ok {
			return PublicKey{}, ErrUnknownKey
		}
		return k, nil
	}
	now := time.Now()
	policy := IdPPolicy{Issuer: "https://idp.example.com", Audience: "assist", Algorithms: []string{"RS256", "ES256", "EdDSA"}}
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "https://idp.example.com", "aud": "assist", "sub": "u1", "email": "Bea@Example.com",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&idp.rsa.PublicKey)
	noneToken := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil))
		tok.Header["kid"] = "r1"
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}
	tampered := func() string {
		s := sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(nil))
		parts := strings.Split(s, ".")
		body, _ := json.Marshal(claims(func(c jwt.MapClaims) { c["email"] = "mallory@example.com" }))
		return parts[0] + "." + enc(body) + "." + parts[2]
	}

	good := []struct {
		name  string
		token string
	}{
		{"an RS256 token of the provider is accepted", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(nil))},
		{"an ES256 token of the provider is accepted", sign(t, jwt.SigningMethodES256, "e1", idp.ec, claims(nil))},
		{"an EdDSA token of the provider is accepted", sign(t, jwt.SigningMethodEdDSA, "d1", idp.ed, claims(nil))},
		{"an audience list containing ours is accepted", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(func(c jwt.MapClaims) { c["aud"] = []string{"other", "assist"} }))},
		{"a verified email is accepted", sign(t, jwt.SigningMethodES256, "e1", idp.ec, claims(func(c jwt.MapClaims) { c["email_verified"] = true }))},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			email, err := VerifyIdP(tc.token, policy, lookup, now)
			if err != nil || email != "bea@example.com" {
				t.Fatalf("got %q, %v", email, err)
			}
		})
	}

	bad := []struct {
		name   string
		token  string
		policy *IdPPolicy
		want   error
	}{
		{"a wrong issuer is refused", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" })), nil, ErrWrongTarget},
		{"a wrong audience is refused", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), nil, ErrWrongTarget},
		{"an expired token is refused", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), nil, ErrExpired},
		{"a token without expiry is refused", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(func(c jwt.MapClaims) { delete(c, "exp") })), nil, ErrInvalid},
		{"a token not valid yet is refused", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), nil, ErrInvalid},
		{"an unknown kid is refused", sign(t, jwt.SigningMethodRS256, "r9", idp.rsa, claims(nil)), nil, ErrUnknownKey},
		{"a token signed by another key under a known kid is refused", sign(t, jwt.SigningMethodRS256, "r1", other.rsa, claims(nil)), nil, ErrInvalid},
		{"an EC token signed by another key is refused", sign(t, jwt.SigningMethodES256, "e1", other.ec, claims(nil)), nil, ErrInvalid},
		{"a tampered payload is refused", tampered(), nil, ErrInvalid},
		{"alg none is refused", noneToken(), nil, ErrInvalid},
		{"HS256 keyed with the provider's public key is refused", sign(t, jwt.SigningMethodHS256, "r1", pubDER, claims(nil)), nil, ErrInvalid},
		{"HS256 keyed with the modulus is refused", sign(t, jwt.SigningMethodHS256, "r1", idp.rsa.N.Bytes(), claims(nil)), nil, ErrInvalid},
		{"an RS256 header on the EC key's kid is refused", sign(t, jwt.SigningMethodRS256, "e1", idp.rsa, claims(nil)), nil, ErrInvalid},
		{"an algorithm the organisation does not allow is refused", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(nil)),
			&IdPPolicy{Issuer: policy.Issuer, Audience: policy.Audience, Algorithms: []string{"ES256"}}, ErrInvalid},
		{"HS256 cannot be allowed", sign(t, jwt.SigningMethodHS256, "r1", pubDER, claims(nil)),
			&IdPPolicy{Issuer: policy.Issuer, Audience: policy.Audience, Algorithms: []string{"HS256"}}, ErrInvalid},
		{"an unverified email is refused", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(func(c jwt.MapClaims) { c["email_verified"] = false })), nil, ErrNoEmail},
		{"a token without an email is refused", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(func(c jwt.MapClaims) { delete(c, "email") })), nil, ErrNoEmail},
		{"the email is read from the organisation's claim only", sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(nil)),
			&IdPPolicy{Issuer: policy.Issuer, Audience: policy.Audience, Algorithms: policy.Algorithms, EmailClaim: "upn"}, ErrNoEmail},
		{"garbage is refused", "not.a.token", nil, ErrInvalid},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := policy
			if tc.policy != nil {
				p = *tc.policy
			}
			email, err := VerifyIdP(tc.token, p, lookup, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %q, %v; want %v", email, err, tc.want)
			}
		})
	}

	t.Run("a custom email claim is used", func(t *testing.T) {
		tok := sign(t, jwt.SigningMethodRS256, "r1", idp.rsa, claims(func(c jwt.MapClaims) { delete(c, "email"); c["upn"] = "sam@example.com" }))
		p := policy
		p.EmailClaim = "upn"
		if email, err := VerifyIdP(tok, p, lookup, now); err != nil || email != "sam@example.com" {
			t.Fatalf("got %q, %v", email, err)
		}
	})
}

func TestParseJWKSRefusesWhatCannotBeTrusted(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	offCurve := new(big.Int).Add(ek.Y, big.NewInt(1)).FillBytes(make([]byte, 32))
	cases := []struct {
		name string
		doc  string
	}{
		{"an RSA key under 2048 bits", `{"keys":[{"kty":"RSA","kid":"a","n":"` + enc(small.N.Bytes()) + `","e":"AQAB"}]}`},
		{"an EC point off the curve", `{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"` + enc(ek.X.FillBytes(make([]byte, 32))) + `","y":"` + enc(offCurve) + `"}]}`},
		{"a symmetric key", `{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]}`},
		{"an unknown curve", `{"keys":[{"kty":"OKP","kid":"a","crv":"X25519","x":"` + enc(make([]byte, 32)) + `"}]}`},
		{"no keys", `{"keys":[]}`},
		{"not JSON", `<html>`},
		{"too big", `{"keys":[],"pad":"` + strings.Repeat("x", MaxJWKSBytes) + `"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is not a usable key set", func(t *testing.T) {
			if set, err := ParseJWKS([]byte(tc.doc)); err == nil {
				t.Fatalf("parsed %v", set)
			}
		})
	}
}
