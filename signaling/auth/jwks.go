package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// An organisation's identity provider (IdP) signs JWTs with keys it publishes as a JSON Web Key
// Set (RFC 7517). Assist verifies such a token against the organisation's settings and, if it
// holds, signs the specialist in. Only asymmetric algorithms are ever accepted: a token that
// says HS256 (or none) is refused before any key is looked at, so a public key can never be
// used as an HMAC secret.

// idpMethods are the algorithms an organisation may allow: asymmetric ones only.
var idpMethods = map[string]jwt.SigningMethod{
	"RS256": jwt.SigningMethodRS256, "RS384": jwt.SigningMethodRS384, "RS512": jwt.SigningMethodRS512,
	"PS256": jwt.SigningMethodPS256, "PS384": jwt.SigningMethodPS384, "PS512": jwt.SigningMethodPS512,
	"ES256": jwt.SigningMethodES256, "ES384": jwt.SigningMethodES384, "ES512": jwt.SigningMethodES512,
	"EdDSA": jwt.SigningMethodEdDSA,
}

// ValidIdPAlgorithm reports whether alg is an asymmetric algorithm Assist verifies.
func ValidIdPAlgorithm(alg string) bool { _, ok := idpMethods[alg]; return ok }

// Limits of a key set.
const (
	MaxJWKSBytes = 256 << 10
	maxJWKSKeys  = 100
)

// PublicKey is one verification key of a key set.
type PublicKey struct {
	Key crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	Alg string           // the key's "alg", if the set names one: then only that algorithm
}

// KeySet is a parsed JWKS: signing keys by kid ("" for a key without one).
type KeySet map[string]PublicKey

// ParseJWKS reads a JSON Web Key Set. Keys that are not for signatures, of unknown types or
// curves, or malformed are skipped (a provider may publish keys Assist has no use for); a set
// with no usable key is an error.
func ParseJWKS(data []byte) (KeySet, error) {
	if len(data) > MaxJWKSBytes {
		return nil, fmt.Errorf("jwks: more than %d bytes", MaxJWKSBytes)
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("jwks: more than %d keys", maxJWKSKeys)
	}
	set := KeySet{}
	for _, k := range doc.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pub, err := k.publicKey()
		if err != nil {
			continue
		}
		if _, dup := set[k.Kid]; dup {
			continue // the first of two keys with one kid wins; the other could never be chosen
		}
		set[k.Kid] = PublicKey{Key: pub, Alg: k.Alg}
	}
	if len(set) == 0 {
		return nil, errors.New("jwks: no usable signing key")
	}
	return set, nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err1 := b64(k.N)
		e, err2 := b64(k.E)
		if err1 != nil || err2 != nil || len(n) < 2048/8 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA key (at least 2048 bits)")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		if exp < 3 || exp%2 == 0 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, errors.New("unknown curve")
		}
		x, err1 := b64(k.X)
		y, err2 := b64(k.Y)
		size := (curve.Params().BitSize + 7) / 8
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC key")
		}
		// ParseUncompressedPublicKey checks that the point is on the curve; a bare
		// ecdsa.PublicKey would not.
		raw := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("bad EC point: %w", err)
		}
		return pub, nil
	case "OKP":
		x, err := b64(k.X)
		if k.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad OKP key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("unknown key type")
}

// IdPPolicy is what an organisation expects of its identity provider's tokens.
type IdPPolicy struct {
	Issuer     string
	Audience   string
	EmailClaim string   // default "email"
	Algorithms []string // allowed; only asymmetric ones ever count
}

// Errors of VerifyIdP besides ErrExpired, ErrInvalid and ErrWrongTarget.
var ErrNoEmail = errors.New("token carries no verified email")

// KeyLookup finds the key a token names (kid may be empty); it returns ErrUnknownKey when the
// set has no such key, after whatever refreshing it does.
type KeyLookup func(kid string) (PublicKey, error)

// VerifyIdP checks an identity provider's token: an allowed asymmetric algorithm, a known key
// of the matching type, the signature, issuer, audience, expiry (required) and not-before,
// and returns the email it vouches for, in lower case.
func VerifyIdP(token string, p IdPPolicy, keys KeyLookup, now time.Time) (string, error) {
	var allowed []string
	for _, a := range p.Algorithms {
		if ValidIdPAlgorithm(a) {
			allowed = append(allowed, a)
		}
	}
	if len(allowed) == 0 || p.Issuer == "" || p.Audience == "" {
		return "", fmt.Errorf("%w: the organisation's identity provider is not configured", ErrInvalid)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(allowed),
		jwt.WithIssuer(p.Issuer),
		jwt.WithAudience(p.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(maxClockSkew),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	claims := jwt.MapClaims{}
	_, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		if !slices.Contains(allowed, alg) { // WithValidMethods checked already; belt and braces
			return nil, fmt.Errorf("algorithm %q is not allowed", alg)
		}
		kid, _ := t.Header["kid"].(string)
		k, err := keys(kid)
		if err != nil {
			return nil, err
		}
		if k.Alg != "" && k.Alg != alg {
			return nil, fmt.Errorf("key %q is for %s, not %s", kid, k.Alg, alg)
		}
		if !keyFits(alg, k.Key) {
			return nil, fmt.Errorf("key %q does not fit algorithm %s", kid, alg)
		}
		return k.Key, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", ErrExpired
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "", fmt.Errorf("%w: %v", ErrWrongTarget, err)
	case errors.Is(err, ErrUnknownKey):
		return "", ErrUnknownKey
	default:
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	claim := p.EmailClaim
	if claim == "" {
		claim = "email"
	}
	email, _ := claims[claim].(string)
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || len(email) > 254 || !strings.Contains(email, "@") {
		return "", ErrNoEmail
	}
	// OpenID Connect says whether the provider checked the address; an unchecked one is not
	// proof of who signs in.
	if v, present := claims["email_verified"]; present && v != true && v != "true" {
		return "", ErrNoEmail
	}
	return email, nil
}

// keyFits reports whether key is of the type (and curve) alg needs.
func keyFits(alg string, key crypto.PublicKey) bool {
	switch alg[:2] {
	case "RS", "PS":
		_, ok := key.(*rsa.PublicKey)
		return ok
	case "ES":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		want := map[string]int{"ES256": 256, "ES384": 384, "ES512": 521}[alg]
		return k.Curve.Params().BitSize == want
	case "Ed":
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}
