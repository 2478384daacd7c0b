package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newIssuer(t *testing.T) *Issuer {
	t.Helper()
	iss, err := NewIssuer(NewSigningKey())
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func TestLinkRoundTrip(t *testing.T) {
	iss := newIssuer(t)
	tok, exp, err := iss.IssueLink("org1", "sess1", RoleCustomer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(exp) < 59*time.Minute {
		t.Fatalf("expiry %v too soon", exp)
	}
	c, err := iss.VerifyLink(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "sess1" || c.Org != "org1" || c.Role != RoleCustomer {
		t.Fatalf("claims = %+v", c)
	}
}

func TestLinkRejections(t *testing.T) {
	iss := newIssuer(t)
	good, _, _ := iss.IssueLink("org1", "sess1", RoleCustomer, time.Hour)
	console, _, _ := iss.IssueConsole("org1", "spec1", time.Hour)

	expiredIss := newIssuer(t)
	expiredIss.SetClock(func() time.Time { return time.Now().Add(-2 * time.Hour) })
	expired, _, _ := expiredIss.IssueLink("org1", "sess1", RoleCustomer, time.Hour)
	expiredIss.SetClock(time.Now)

	other := newIssuer(t)
	foreign, _, _ := other.IssueLink("org1", "sess1", RoleCustomer, time.Hour)

	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]

	none := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Org: "org1", Role: RoleSpecialist})
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)

	cases := []struct {
		name  string
		iss   *Issuer
		token string
		want  error
	}{
		{"an expired link is expired", expiredIss, expired, ErrExpired},
		{"a link signed by another server is refused", iss, foreign, ErrUnknownKey},
		{"a tampered link is invalid", iss, tampered, ErrInvalid},
		{"a console token is not a link", iss, console, ErrWrongTarget},
		{"an unsigned token is invalid", iss, noneTok, ErrInvalid},
		{"garbage is invalid", iss, "not.a.jwt", ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.iss.VerifyLink(c.token)
			if !errors.Is(err, c.want) && !(c.want == ErrUnknownKey && errors.Is(err, ErrInvalid)) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestKeyRotationAcceptsOldKeys(t *testing.T) {
	oldKey, newKey := NewSigningKey(), NewSigningKey()
	before, _ := NewIssuer(oldKey)
	tok, _, _ := before.IssueLink("o", "s", RoleSpecialist, time.Hour)
	after, _ := NewIssuer(newKey, oldKey)
	if _, err := after.VerifyLink(tok); err != nil {
		t.Fatalf("token from the old key refused after rotation: %v", err)
	}
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h, "correct horse") {
		t.Fatal("right password refused")
	}
	if CheckPassword(h, "wrong horse") || CheckPassword("garbage", "correct horse") {
		t.Fatal("wrong password accepted")
	}
	if _, err := HashPassword("short"); err == nil {
		t.Fatal("short password accepted")
	}
}

func TestAPIKeyHashIsStable(t *testing.T) {
	k := NewAPIKey()
	if !strings.HasPrefix(k, APIKeyPrefix) || HashAPIKey(k) != HashAPIKey(k) || HashAPIKey(k) == HashAPIKey(k+"x") {
		t.Fatal("API key hashing is not a stable function of the key")
	}
}

func FuzzVerifyLink(f *testing.F) {
	iss, _ := NewIssuer(NewSigningKey())
	good, _, _ := iss.IssueLink("o", "s", RoleCustomer, time.Hour)
	f.Add(good)
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := iss.VerifyLink(tok)
		if err == nil && (c.Subject == "" || c.Org == "") {
			t.Fatal("accepted a token without subject or organisation")
		}
	})
}

func TestDownloadTokens(t *testing.T) {
	iss := newIssuer(t)
	tok, err := iss.IssueDownload("org1", "sess1", "orgs/org1/sessions/sess1/files/f1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.VerifyDownload(tok)
	if err != nil || c.Object != "orgs/org1/sessions/sess1/files/f1" || c.Subject != "sess1" {
		t.Fatalf("claims %+v, err %v", c, err)
	}
	if _, err := iss.VerifyLink(tok); !errors.Is(err, ErrWrongTarget) {
		t.Fatalf("a download token opened a session: %v", err)
	}
	link, _, _ := iss.IssueLink("org1", "sess1", RoleCustomer, time.Hour)
	if _, err := iss.VerifyDownload(link); !errors.Is(err, ErrWrongTarget) {
		t.Fatalf("a link downloaded a file: %v", err)
	}
}
