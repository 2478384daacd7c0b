package signaling

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/webclient/browsertest"
)

// fakeIdP is an organisation's identity provider, made in the test: keys generated here, a
// JWKS served by a local HTTP server that counts its fetches, and rotation on demand.
type fakeIdP struct {
	t       *testing.T
	issuer  string
	srv     *httptest.Server
	fetches atomic.Int32

	mu   sync.Mutex
	keys map[string]any // kid → *rsa.PrivateKey or *ecdsa.PrivateKey, as published
	body []byte         // when set, served instead of the keys (oversized sets)
}

func newFakeIdP(t *testing.T, issuer string) *fakeIdP {
	t.Helper()
	p := &fakeIdP{t: t, issuer: issuer, keys: map[string]any{}}
	p.addRSA("rsa-1")
	p.addEC("ec-1")
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(p.jwks())
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeIdP) addRSA(kid string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
}

func (p *fakeIdP) addEC(kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
}

// rotate publishes only a new RSA key: tokens of the old keys stop verifying.
func (p *fakeIdP) rotate(kid string) {
	p.mu.Lock()
	p.keys = map[string]any{}
	p.mu.Unlock()
	p.addRSA(kid)
}

func (p *fakeIdP) jwks() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.body != nil {
		return p.body
	}
	b64 := base64.RawURLEncoding.EncodeToString
	var keys []map[string]string
	for kid, k := range p.keys {
		switch k := k.(type) {
		case *rsa.PrivateKey:
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
				"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PrivateKey:
			keys = append(keys, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256",
				"x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32)))})
		}
	}
	data, _ := json.Marshal(map[string]any{"keys": keys})
	return data
}

// token signs claims for email with the key kid (the current one, or a given other key).
func (p *fakeIdP) token(kid, email string, change func(jwt.MapClaims)) string {
	p.t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"iss": p.issuer, "aud": "assist-console", "sub": email, "email": email,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	if change != nil {
		change(claims)
	}
	p.mu.Lock()
	key := p.keys[kid]
	p.mu.Unlock()
	if key == nil { // an unknown kid: sign with a key nobody publishes
		key, _ = rsa.GenerateKey(rand.Reader, 2048)
	}
	method := jwt.SigningMethod(jwt.SigningMethodRS256)
	if _, ec := key.(*ecdsa.PrivateKey); ec {
		method = jwt.SigningMethodES256
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

func (p *fakeIdP) settings() identityProviderView {
	return identityProviderView{JWKSURL: p.srv.URL + "/jwks.json", Issuer: p.issuer, Audience: "assist-console"}
}

// idpSignIn calls POST /v1/auth/idp.
func (ts *testServer) idpSignIn(t *testing.T, org, token string) (*http.Response, api.LoginResult) {
	t.Helper()
	var out api.LoginResult
	resp := ts.do(t, "POST", "/v1/auth/idp", "", idpSignIn{OrganizationID: org, Token: token}, &out)
	return resp, out
}

// idpWorld is a node with two organisations, each trusting its own identity provider.
type idpWorld struct {
	ts         *testServer
	orgA, orgB string
	idpA, idpB *fakeIdP
	keyB       string // an admin API key of organisation B
	clock      atomic.Int64
}

func newIdPWorld(t *testing.T) *idpWorld {
	t.Helper()
	cfg := testConfig(t)
	cfg.IdPAllowPrivate = true // the providers listen on 127.0.0.1
	cfg.LoginRate = 1000
	w := &idpWorld{ts: startTestServer(t, cfg)}
	ts := w.ts
	w.clock.Store(time.Now().UnixNano())
	ts.idp.now = func() time.Time { return time.Unix(0, w.clock.Load()) }
	w.orgA = ts.Bootstrap().OrganizationID
	var org orgSummary
	if resp := ts.do(t, "POST", "/v1/orgs", ts.APIKey, map[string]any{"name": "Other"}, &org); resp.StatusCode != 201 {
		t.Fatalf("create org: %d", resp.StatusCode)
	}
	w.orgB = org.ID
	var key apiKeyView
	if resp := ts.do(t, "POST", "/v1/api-keys", ts.APIKey, map[string]any{"name": "b-admin", "scopes": []string{rooms.ScopeAdmin}, "organization_id": w.orgB}, &key); resp.StatusCode != 201 {
		t.Fatalf("create key: %d", resp.StatusCode)
	}
	w.keyB = key.Key
	for _, sp := range []struct{ org, email string }{{w.orgA, "bea@a.example"}, {w.orgB, "sam@b.example"}} {
		if resp := ts.do(t, "POST", "/v1/specialists", ts.APIKey, map[string]any{"email": sp.email, "name": "Someone", "organization_id": sp.org}, nil); resp.StatusCode != 201 {
			t.Fatalf("create specialist: %d", resp.StatusCode)
		}
	}
	w.idpA, w.idpB = newFakeIdP(t, "https://idp.a.example"), newFakeIdP(t, "https://idp.b.example")
	var got identityProviderView
	if resp := ts.do(t, "PUT", "/v1/organization/identity-provider", ts.APIKey, w.idpA.settings(), &got); resp.StatusCode != 200 {
		t.Fatalf("set A's provider: %d", resp.StatusCode)
	}
	if got.EmailClaim != "email" || len(got.Algorithms) != 3 || got.JWKSURL != w.idpA.settings().JWKSURL {
		t.Fatalf("A's provider = %+v", got)
	}
	if resp := ts.do(t, "PUT", "/v1/organization/identity-provider", w.keyB, w.idpB.settings(), nil); resp.StatusCode != 200 {
		t.Fatalf("set B's provider: %d", resp.StatusCode)
	}
	return w
}

func TestIdentityProviderSignIn(t *testing.T) {
	w := newIdPWorld(t)
	ts, a, b := w.ts, w.idpA, w.idpB

	for _, kid := range []string{"rsa-1", "ec-1"} {
		t.Run("a specialist signs in with a token of the organisation's provider ("+kid+")", func(t *testing.T) {
			resp, out := ts.idpSignIn(t, w.orgA, a.token(kid, "Bea@A.example", nil))
			if resp.StatusCode != 200 || out.Token == "" || time.Until(out.ExpiresAt) <= 0 {
				t.Fatalf("%d %+v", resp.StatusCode, out)
			}
			claims, err := ts.issuer.VerifyConsole(out.Token)
			if err != nil || claims.Org != w.orgA {
				t.Fatalf("the console token: %+v %v", claims, err)
			}
			if resp := ts.do(t, "GET", "/v1/sessions", out.Token, nil, nil); resp.StatusCode != 200 {
				t.Fatalf("the console token does not work: %d", resp.StatusCode)
			}
		})
	}

	hsWithPublicKey := func() string {
		a.mu.Lock()
		der, _ := x509.MarshalPKIXPublicKey(&a.keys["rsa-1"].(*rsa.PrivateKey).PublicKey)
		a.mu.Unlock()
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": a.issuer, "aud": "assist-console", "email": "bea@a.example", "exp": time.Now().Add(time.Minute).Unix()})
		tok.Header["kid"] = "rsa-1"
		s, _ := tok.SignedString(der)
		return s
	}
	algNone := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": a.issuer, "aud": "assist-console", "email": "bea@a.example", "exp": time.Now().Add(time.Minute).Unix()})
		tok.Header["kid"] = "rsa-1"
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}
	badSignature := func() string {
		s := a.token("rsa-1", "bea@a.example", nil)
		other := a.token("rsa-1", "mallory@a.example", nil)
		return s[:strings.LastIndex(s, ".")] + other[strings.LastIndex(other, "."):]
	}
	refused := []struct {
		name, org, token string
	}{
		{"a wrong issuer", w.orgA, a.token("rsa-1", "bea@a.example", func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })},
		{"a wrong audience", w.orgA, a.token("rsa-1", "bea@a.example", func(c jwt.MapClaims) { c["aud"] = "another-app" })},
		{"an expired token", w.orgA, a.token("rsa-1", "bea@a.example", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })},
		{"an unknown kid", w.orgA, a.token("rsa-9", "bea@a.example", nil)},
		{"a bad signature", w.orgA, badSignature()},
		{"alg none", w.orgA, algNone()},
		{"HS256 keyed with the provider's public key", w.orgA, hsWithPublicKey()},
		{"another organisation's provider's token", w.orgA, b.token("rsa-1", "bea@a.example", nil)},
		{"a token of A's provider for B's specialist", w.orgA, a.token("rsa-1", "sam@b.example", nil)},
		{"A's provider's token presented to B", w.orgB, a.token("rsa-1", "sam@b.example", nil)},
		{"an email nobody has", w.orgA, a.token("rsa-1", "nobody@a.example", nil)},
		{"an organisation without a provider", "org_none", a.token("rsa-1", "bea@a.example", nil)},
		{"no token", w.orgA, ""},
	}
	for _, tc := range refused {
		t.Run(tc.name+" is refused with a 401 problem", func(t *testing.T) {
			resp, out := ts.idpSignIn(t, tc.org, tc.token)
			if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != problem.ContentType || out.Token != "" {
				t.Fatalf("%d %s %+v", resp.StatusCode, resp.Header.Get("Content-Type"), out)
			}
		})
	}

	t.Run("B's specialist signs in through B's provider", func(t *testing.T) {
		resp, out := ts.idpSignIn(t, w.orgB, b.token("ec-1", "sam@b.example", nil))
		if resp.StatusCode != 200 {
			t.Fatalf("%d", resp.StatusCode)
		}
		if claims, err := ts.issuer.VerifyConsole(out.Token); err != nil || claims.Org != w.orgB {
			t.Fatalf("%+v %v", claims, err)
		}
	})

	t.Run("sign-ins and refusals are in the organisation's audit trail", func(t *testing.T) {
		waitAudit(t, ts, ts.APIKey, audit.ActionSignIn, func(e audit.Event) bool {
			return e.Detail == "method=idp" && e.Target == "bea@a.example"
		})
		waitAudit(t, ts, ts.APIKey, audit.ActionSignInFailed, func(e audit.Event) bool {
			return strings.HasPrefix(e.Detail, "method=idp") && e.Target == "nobody@a.example"
		})
	})
}

// waitAudit waits until the caller's organisation's trail holds a matching event.
func waitAudit(t *testing.T, ts *testServer, bearer, action string, match func(audit.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page struct {
			Data []audit.Event `json:"data"`
		}
		ts.do(t, "GET", "/v1/audit-events?action="+url.QueryEscape(action), bearer, nil, &page)
		for _, e := range page.Data {
			if match(e) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching %s event in %+v", action, page.Data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestIdentityProviderKeyRotation(t *testing.T) {
	w := newIdPWorld(t)
	ts, a := w.ts, w.idpA
	if resp, _ := ts.idpSignIn(t, w.orgA, a.token("rsa-1", "bea@a.example", nil)); resp.StatusCode != 200 {
		t.Fatalf("first sign-in: %d", resp.StatusCode)
	}
	base := a.fetches.Load()

	t.Run("a cached key set is not fetched again for each sign-in", func(t *testing.T) {
		for range 3 {
			if resp, _ := ts.idpSignIn(t, w.orgA, a.token("ec-1", "bea@a.example", nil)); resp.StatusCode != 200 {
				t.Fatalf("%d", resp.StatusCode)
			}
		}
		if n := a.fetches.Load() - base; n != 0 {
			t.Fatalf("%d fetches", n)
		}
	})

	dropped := a.token("rsa-1", "bea@a.example", nil) // signed by a key the provider is about to drop
	a.rotate("rsa-2")
	fresh := a.token("rsa-2", "bea@a.example", nil)
	t.Run("an unknown kid fetches the set again, at most once per interval", func(t *testing.T) {
		w.clock.Add(int64(idpMinRefetch + time.Second))
		if resp, _ := ts.idpSignIn(t, w.orgA, a.token("bogus-1", "bea@a.example", nil)); resp.StatusCode != 401 {
			t.Fatalf("%d", resp.StatusCode)
		}
		if n := a.fetches.Load() - base; n != 1 {
			t.Fatalf("%d fetches after an unknown kid, want 1", n)
		}
		for range 3 {
			if resp, _ := ts.idpSignIn(t, w.orgA, a.token("bogus-2", "bea@a.example", nil)); resp.StatusCode != 401 {
				t.Fatalf("%d", resp.StatusCode)
			}
		}
		if n := a.fetches.Load() - base; n != 1 {
			t.Fatalf("%d fetches after more unknown kids within the interval, want 1", n)
		}
	})
	t.Run("the provider's new key verifies (it was fetched with the unknown kid)", func(t *testing.T) {
		if resp, _ := ts.idpSignIn(t, w.orgA, fresh); resp.StatusCode != 200 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("a key the provider rotated in later is fetched once the interval has passed", func(t *testing.T) {
		a.addEC("ec-2")
		tok := a.token("ec-2", "bea@a.example", nil)
		if resp, _ := ts.idpSignIn(t, w.orgA, tok); resp.StatusCode != 401 {
			t.Fatalf("within the interval: %d, want 401", resp.StatusCode)
		}
		w.clock.Add(int64(idpMinRefetch + time.Second))
		if resp, _ := ts.idpSignIn(t, w.orgA, tok); resp.StatusCode != 200 {
			t.Fatalf("after the interval: %d, want 200", resp.StatusCode)
		}
	})
	t.Run("keys the provider dropped stop verifying once the set is refetched", func(t *testing.T) {
		w.clock.Add(int64(idpKeysTTL + time.Second))
		if resp, _ := ts.idpSignIn(t, w.orgA, a.token("rsa-2", "bea@a.example", nil)); resp.StatusCode != 200 {
			t.Fatalf("%d", resp.StatusCode)
		}
		if resp, _ := ts.idpSignIn(t, w.orgA, dropped); resp.StatusCode != 401 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
}

func TestIdentityProviderSettings(t *testing.T) {
	w := newIdPWorld(t)
	ts := w.ts
	var got identityProviderView
	if resp := ts.do(t, "GET", "/v1/organization/identity-provider", w.keyB, nil, &got); resp.StatusCode != 200 || got.Issuer != w.idpB.issuer {
		t.Fatalf("B's provider: %d %+v", resp.StatusCode, got)
	}
	huge := newFakeIdP(t, "https://huge.example")
	huge.body = []byte(`{"keys":[],"pad":"` + strings.Repeat("x", auth.MaxJWKSBytes) + `"}`)
	bad := []struct {
		name string
		in   identityProviderView
	}{
		{"a URL that is not http(s)", identityProviderView{JWKSURL: "file:///etc/passwd", Issuer: "i", Audience: "a"}},
		{"no issuer", identityProviderView{JWKSURL: w.idpA.settings().JWKSURL, Audience: "a"}},
		{"no audience", identityProviderView{JWKSURL: w.idpA.settings().JWKSURL, Issuer: "i"}},
		{"a symmetric algorithm", identityProviderView{JWKSURL: w.idpA.settings().JWKSURL, Issuer: "i", Audience: "a", Algorithms: []string{"HS256"}}},
		{"alg none", identityProviderView{JWKSURL: w.idpA.settings().JWKSURL, Issuer: "i", Audience: "a", Algorithms: []string{"none"}}},
		{"a key set too big to read", huge.settings()},
		{"a URL that serves no key set", identityProviderView{JWKSURL: ts.URL + "/healthz", Issuer: "i", Audience: "a"}},
	}
	for _, tc := range bad {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			if resp := ts.do(t, "PUT", "/v1/organization/identity-provider", w.keyB, tc.in, nil); resp.StatusCode != 422 {
				t.Fatalf("%d, want 422", resp.StatusCode)
			}
		})
	}
	t.Run("removing the provider stops its sign-ins", func(t *testing.T) {
		if resp := ts.do(t, "DELETE", "/v1/organization/identity-provider", w.keyB, nil, nil); resp.StatusCode != 204 {
			t.Fatalf("%d", resp.StatusCode)
		}
		if resp, _ := ts.idpSignIn(t, w.orgB, w.idpB.token("rsa-1", "sam@b.example", nil)); resp.StatusCode != 401 {
			t.Fatalf("%d", resp.StatusCode)
		}
		if resp := ts.do(t, "GET", "/v1/organization/identity-provider", w.keyB, nil, nil); resp.StatusCode != 404 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
}

// TestIdentityProviderFetchesOnlyPublicAddresses: without idp-allow-private, key sets are not
// fetched from loopback or private addresses (the check is made on the address dialled, after
// name resolution), and plain http is refused.
func TestIdentityProviderFetchesOnlyPublicAddresses(t *testing.T) {
	idp := newFakeIdP(t, "https://idp.example")
	keys := newIdPKeys(false, slog.New(slog.DiscardHandler))
	for _, u := range []string{idp.srv.URL, "https://127.0.0.1:9/jwks", "https://169.254.169.254/jwks", "https://localhost:9/jwks", "https://[::1]:9/jwks"} {
		t.Run(u+" is not fetched", func(t *testing.T) {
			_, err := keys.fetch(context.Background(), u)
			if !errors.Is(err, webhooks.ErrForbiddenTarget) {
				t.Fatalf("err = %v, want ErrForbiddenTarget", err)
			}
		})
	}
	if n := idp.fetches.Load(); n != 0 {
		t.Fatalf("the provider was reached %d times", n)
	}
	s := &Server{}
	if _, err := s.checkIdentityProvider(idp.settings()); err == nil {
		t.Fatal("an http JWKS URL was accepted")
	}
}

// TestBrowserConsoleSignsInThroughIdentityProvider: an integrator's single sign-on hands the
// console #idp_token=…&org=…; the console exchanges it and is signed in, and the token leaves
// the address bar. A refused token shows why on the sign-in form.
func TestBrowserConsoleSignsInThroughIdentityProvider(t *testing.T) {
	w := newIdPWorld(t)
	browser := browsertest.New(t)
	console := browser.NewNamedTab(t, "console")
	link := w.ts.URL + "/console/#idp_token=" + url.QueryEscape(w.idpA.token("rsa-1", "bea@a.example", nil)) + "&org=" + w.orgA
	must(t, "open the single sign-on link", browsertest.Navigate(console, link))
	must(t, "signed in", browsertest.WaitVisible(console, `[data-testid="new-session"]`, 15*time.Second))
	hash, err := browsertest.Eval[string](console, `window.location.hash`)
	if err != nil || hash != "" {
		t.Fatalf("the token stayed in the address bar: %q %v", hash, err)
	}
	stored, err := browsertest.Eval[string](console, `JSON.parse(sessionStorage.getItem('assist.console')).token`)
	if err != nil {
		t.Fatal(err)
	}
	if claims, err := w.ts.issuer.VerifyConsole(stored); err != nil || claims.Org != w.orgA {
		t.Fatalf("the console holds %+v %v", claims, err)
	}

	other := browser.NewNamedTab(t, "refused")
	bad := w.ts.URL + "/console/#idp_token=" + url.QueryEscape(w.idpB.token("rsa-1", "bea@a.example", nil)) + "&org=" + w.orgA
	must(t, "open a link with another provider's token", browsertest.Navigate(other, bad))
	must(t, "the refusal is shown", browsertest.WaitFor(other,
		`(document.querySelector('[data-testid="login-error"]')?.textContent || '').includes('Single sign-on failed')`, 15*time.Second))

	t.Run("a specialist who is not an administrator does not see the settings", func(t *testing.T) {
		must(t, "the sessions list", browsertest.WaitVisible(console, `[data-testid="session-list"]`, 10*time.Second))
		hidden, err := browsertest.Eval[bool](console, `document.querySelector('[data-testid="sso-panel"]').hidden`)
		if err != nil || !hidden {
			t.Fatalf("the settings are shown to a specialist: hidden=%v %v", hidden, err)
		}
	})
	t.Run("an administrator changes and removes the provider in the console", func(t *testing.T) {
		admin := browser.NewNamedTab(t, "admin")
		must(t, "open console", browsertest.Navigate(admin, w.ts.URL+"/console/"))
		must(t, "email", browsertest.SetValue(admin, `[data-testid="login-email"]`, testEmail))
		must(t, "password", browsertest.SetValue(admin, `[data-testid="login-password"]`, testPassword))
		must(t, "sign in", browsertest.Click(admin, `[data-testid="login"]`))
		must(t, "the settings show the provider", browsertest.WaitFor(admin,
			`document.querySelector('[data-testid="sso-jwks-url"]').value === `+strconvQuote(w.idpA.settings().JWKSURL), 10*time.Second))
		must(t, "open the panel", browsertest.Click(admin, `[data-testid="sso-panel"] summary`))
		must(t, "audience", browsertest.SetValue(admin, `[data-testid="sso-audience"]`, "assist-console-2"))
		must(t, "save", browsertest.Click(admin, `[data-testid="sso-save"]`))
		must(t, "saved", browsertest.WaitFor(admin, `document.querySelector('[data-testid="sso-status"]').textContent.startsWith('Saved')`, 10*time.Second))
		var got identityProviderView
		if resp := w.ts.do(t, "GET", "/v1/organization/identity-provider", w.ts.APIKey, nil, &got); resp.StatusCode != 200 || got.Audience != "assist-console-2" {
			t.Fatalf("%d %+v", resp.StatusCode, got)
		}
		must(t, "remove", browsertest.Click(admin, `[data-testid="sso-remove"]`))
		must(t, "removed", browsertest.WaitFor(admin, `document.querySelector('[data-testid="sso-status"]').textContent.startsWith('Removed')`, 10*time.Second))
		if resp := w.ts.do(t, "GET", "/v1/organization/identity-provider", w.ts.APIKey, nil, nil); resp.StatusCode != 404 {
			t.Fatalf("after removing: %d", resp.StatusCode)
		}
	})
}

func strconvQuote(s string) string { q, _ := json.Marshal(s); return string(q) }

// TestIdentityProviderSignInsShareTheAddressBudget: exchanges count against the client
// address's sign-in budget like passwords do.
func TestIdentityProviderSignInsShareTheAddressBudget(t *testing.T) {
	cfg := testConfig(t)
	cfg.LoginRate = 2
	ts := startTestServer(t, cfg)
	org := ts.Bootstrap().OrganizationID
	for i, want := range []int{401, 401, 429} {
		resp, _ := ts.idpSignIn(t, org, "a.b.c")
		if resp.StatusCode != want {
			t.Fatalf("attempt %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}
