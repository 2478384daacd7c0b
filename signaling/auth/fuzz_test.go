package auth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/argon2"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fuzzIssuer signs with a fixed key on a fixed clock, so tokens in the seed corpus stay valid.
func fuzzIssuer(f *testing.F) *Issuer {
	iss, err := NewIssuer(SigningKey{ID: "fuzzkey1", Secret: []byte("0123456789abcdef0123456789abcdef")},
		SigningKey{ID: "oldkey01", Secret: []byte("fedcba9876543210fedcba9876543210")})
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	iss.SetClock(func() time.Time { return at })
	return iss
}

// FuzzVerifyAnyToken gives every verifier (links, console tokens, download tokens) the same
// arbitrary string: the Bearer header, the /c/{token} path and the join message all reach them.
// No string is accepted for two uses, and nothing accepted lacks what the server relies on.
func FuzzVerifyAnyToken(f *testing.F) {
	iss := fuzzIssuer(f)
	link, _, _ := iss.IssueLink("org_1", "ses_1", RoleCustomer, time.Hour)
	spec, _, _ := iss.IssueLink("org_1", "ses_1", RoleSpecialist, time.Hour)
	console, _, _ := iss.IssueConsole("org_1", "spc_1", time.Hour)
	download, _ := iss.IssueDownload("org_1", "ses_1", "orgs/org_1/sessions/ses_1/files/fil_1.pdf", time.Minute)
	expired, _, _ := iss.IssueLink("org_1", "ses_1", RoleCustomer, -time.Hour)
	b64 := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		link, spec, console, download, expired,
		"", ".", "..", "a.b.c", strings.Repeat("a", 5000),
		b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"iss":"assist","aud":"assist-link","sub":"s","org":"o","role":"customer","exp":9999999999}`)) + ".",
		b64([]byte(`{"alg":"HS256","kid":"nokey"}`)) + "." + b64([]byte(`{}`)) + ".sig",
		b64([]byte(`{"alg":"RS256","kid":"fuzzkey1"}`)) + "." + b64([]byte(`{"aud":["assist-link","assist-console"]}`)) + ".sig",
		b64([]byte(`{"alg":"HS256","kid":["fuzzkey1"]}`)) + ".e30.",
		link[:len(link)-2], link + "=", strings.Replace(link, ".", "..", 1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		accepted := 0
		if c, err := iss.VerifyLink(tok); err == nil {
			accepted++
			if c.Subject == "" || c.Org == "" || (c.Role != RoleCustomer && c.Role != RoleSpecialist) {
				t.Fatalf("link accepted without session, organisation or role: %+v", c)
			}
		}
		if c, err := iss.VerifyConsole(tok); err == nil {
			accepted++
			if c.Subject == "" || c.Org == "" {
				t.Fatalf("console token accepted without specialist or organisation: %+v", c)
			}
		}
		if c, err := iss.VerifyDownload(tok); err == nil {
			accepted++
			if c.Subject == "" || c.Org == "" || c.Object == "" {
				t.Fatalf("download token accepted without session, organisation or object: %+v", c)
			}
		}
		if accepted > 1 {
			t.Fatalf("one token is good for %d uses: %q", accepted, tok)
		}
	})
}

// FuzzCheckPassword: sign-in passwords are arbitrary text; only the right one matches. The
// stored hash uses cheap argon2 parameters so the fuzzer gets many tries a second.
func FuzzCheckPassword(f *testing.F) {
	const right = "correct horse battery"
	// m=64 KiB, t=1, p=1, salt "saltsaltsaltsalt", key = argon2id(right).
	hash := cheapHash(right)
	f.Add(right)
	f.Add("")
	f.Add(right + "\x00")
	f.Add(strings.ToUpper(right))
	f.Add(strings.Repeat("x", 1<<12))
	f.Fuzz(func(t *testing.T, password string) {
		if CheckPassword(hash, password) != (password == right) {
			t.Fatalf("CheckPassword(%q) is wrong", password)
		}
	})
}

func cheapHash(password string) string {
	salt := []byte("saltsaltsaltsalt")
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, argonKeyLen)
	b64 := base64.RawStdEncoding
	return "$argon2id$v=19$m=64,t=1,p=1$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key)
}
