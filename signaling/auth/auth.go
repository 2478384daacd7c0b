// Package auth issues and checks Assist's credentials: signed session links, console tokens,
// API keys and specialists' passwords.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/argon2"
)

// Role is what a token lets its holder be in a session.
type Role string

// Roles.
const (
	RoleCustomer   Role = "customer"
	RoleSpecialist Role = "specialist"
	// RoleExpert: an outside expert's one-off link into one session (see signaling's
	// invitations); the server honours it only while its invitation is open.
	RoleExpert Role = "expert"
)

// Audiences keep one kind of token from being used as another.
const (
	issuer           = "assist"
	AudienceLink     = "assist-link"
	AudienceConsole  = "assist-console"
	AudienceDownload = "assist-download"
	maxClockSkew     = 30 * time.Second
	signingKeyLength = 32
)

// Errors returned by Verify*.
var (
	ErrExpired     = errors.New("token has expired")
	ErrInvalid     = errors.New("token is invalid")
	ErrUnknownKey  = errors.New("token is signed with an unknown key")
	ErrWrongTarget = errors.New("token is not for this use")
)

// Claims are the claims of every Assist token.
type Claims struct {
	jwt.RegisteredClaims
	Org    string `json:"org"`
	Role   Role   `json:"role,omitempty"`
	Object string `json:"obj,omitempty"` // download tokens: the object key
}

// SigningKey is one HMAC key with its id.
type SigningKey struct {
	ID     string `json:"id"`
	Secret []byte `json:"secret"`
}

// NewSigningKey makes a random key.
func NewSigningKey() SigningKey {
	secret := make([]byte, signingKeyLength)
	_, _ = rand.Read(secret)
	return SigningKey{ID: randomID(8), Secret: secret}
}

// Issuer signs tokens with its current key and accepts any of its keys, so keys can rotate.
type Issuer struct {
	mu      sync.RWMutex // guards keys and current, which rotate while serving
	keys    map[string][]byte
	current SigningKey
	now     func() time.Time
}

// NewIssuer signs with current and also accepts older.
func NewIssuer(current SigningKey, older ...SigningKey) (*Issuer, error) {
	iss := &Issuer{now: time.Now}
	return iss, iss.SetKeys(current, older...)
}

// SetKeys rotates: from now on tokens are signed with current, and tokens signed with any of
// older are still accepted (until they expire or their key is dropped).
func (i *Issuer) SetKeys(current SigningKey, older ...SigningKey) error {
	if current.ID == "" || len(current.Secret) < 16 {
		return errors.New("auth: signing key needs an id and at least 16 bytes")
	}
	keys := map[string][]byte{current.ID: current.Secret}
	for _, k := range older {
		keys[k.ID] = k.Secret
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys, i.current = keys, current
	return nil
}

// CurrentKeyID names the key new tokens are signed with.
func (i *Issuer) CurrentKeyID() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.current.ID
}

// At returns an issuer with the same keys and another clock (tests of expiry).
func (i *Issuer) At(now func() time.Time) *Issuer {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return &Issuer{keys: i.keys, current: i.current, now: now}
}

// SetClock replaces the clock (tests).
func (i *Issuer) SetClock(now func() time.Time) { i.now = now }

// IssueLink signs a link for one role in one session of one organisation.
func (i *Issuer) IssueLink(org, session string, role Role, ttl time.Duration) (string, time.Time, error) {
	return i.issue(AudienceLink, org, session, role, ttl)
}

// IssueConsole signs a specialist's console token.
func (i *Issuer) IssueConsole(org, specialist string, ttl time.Duration) (string, time.Time, error) {
	return i.issue(AudienceConsole, org, specialist, RoleSpecialist, ttl)
}

func (i *Issuer) issue(aud, org, subject string, role Role, ttl time.Duration) (string, time.Time, error) {
	return i.issueWith(aud, org, subject, role, ttl, "")
}

func (i *Issuer) issueWith(aud, org, subject string, role Role, ttl time.Duration, object string) (string, time.Time, error) {
	now := i.now()
	exp := now.Add(ttl)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{aud},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        randomID(12),
		},
		Org:    org,
		Role:   role,
		Object: object,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	i.mu.RLock()
	key := i.current
	i.mu.RUnlock()
	tok.Header["kid"] = key.ID
	s, err := tok.SignedString(key.Secret)
	return s, exp, err
}

// VerifyLink checks a session link.
func (i *Issuer) VerifyLink(token string) (*Claims, error) {
	c, err := i.verify(token, AudienceLink)
	if err != nil {
		return nil, err
	}
	if c.Role != RoleCustomer && c.Role != RoleSpecialist && c.Role != RoleExpert {
		return nil, fmt.Errorf("%w: unknown role", ErrInvalid)
	}
	return c, nil
}

// IssueDownload signs a short-lived URL token for one stored object of one session.
func (i *Issuer) IssueDownload(org, session, objectKey string, ttl time.Duration) (string, error) {
	tok, _, err := i.issueWith(AudienceDownload, org, session, "", ttl, objectKey)
	return tok, err
}

// VerifyDownload checks a download token and returns its claims; Object is the stored key.
func (i *Issuer) VerifyDownload(token string) (*Claims, error) {
	c, err := i.verify(token, AudienceDownload)
	if err == nil && c.Object == "" {
		return nil, fmt.Errorf("%w: no object", ErrInvalid)
	}
	return c, err
}

// VerifyConsole checks a console token.
func (i *Issuer) VerifyConsole(token string) (*Claims, error) {
	return i.verify(token, AudienceConsole)
}

func (i *Issuer) verify(token, aud string) (*Claims, error) {
	var claims Claims
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(aud),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(maxClockSkew),
		jwt.WithTimeFunc(i.now),
	)
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		i.mu.RLock()
		secret, ok := i.keys[kid]
		i.mu.RUnlock()
		if !ok {
			return nil, ErrUnknownKey
		}
		return secret, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrExpired
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, ErrWrongTarget
	default:
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if claims.Subject == "" || claims.Org == "" {
		return nil, fmt.Errorf("%w: missing subject or organisation", ErrInvalid)
	}
	return &claims, nil
}

// APIKeyPrefix starts every API key, so a leaked key is recognisable.
const APIKeyPrefix = "ak_"

// NewAPIKey makes a random API key.
func NewAPIKey() string { return APIKeyPrefix + randomID(24) }

// HashAPIKey is how API keys are stored and looked up: never in the clear.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Password hashing: argon2id, memory-hard. The stored form carries its parameters.
const (
	argonTime    = 2
	argonMemory  = 32 * 1024
	argonThreads = 2
	argonKeyLen  = 32
)

// HashPassword hashes a password for storage.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("password must be at least 8 characters")
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s",
		argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the stored hash.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var mem, t uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &threads); err != nil {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || mem > 1<<20 || t > 10 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// NewPassword makes a random password for bootstrap accounts.
func NewPassword() string { return randomID(12) }

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
