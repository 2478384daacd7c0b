package signaling

// Signing in through an organisation's own identity provider (IdP). The organisation's
// administrator names the provider's JWKS URL, issuer and audience; an integrator's single
// sign-on then hands the console a token the provider signed (the console reads it from its
// URL fragment, #idp_token=…&org=…) and POST /v1/auth/idp exchanges it for Assist's short-lived
// console token. The token's email must be that of an existing specialist of the named
// organisation: unknown addresses are refused, never provisioned, so the IdP vouches for who
// someone is and the organisation's administrators still decide who is staff.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/problem"
)

const (
	idpKeysTTL        = 15 * time.Minute // a fetched key set is used this long before it is fetched again
	idpMinRefetch     = 30 * time.Second // an unknown kid fetches the set again at most this often per URL
	idpFetchTimeout   = 5 * time.Second
	maxIdPTokenLength = 16 << 10
)

// idpKeys fetches and caches identity providers' key sets, by URL.
type idpKeys struct {
	client     *http.Client
	log        *slog.Logger
	ttl        time.Duration
	minRefetch time.Duration
	now        func() time.Time // replaced by tests of rotation and rate limits

	mu   sync.Mutex // guards sets
	sets map[string]*idpKeySet
}

// idpKeySet is one provider's keys. Its mutex is held across a fetch, so that many sign-ins
// naming an unknown kid at once cause one request to the provider, not one each.
type idpKeySet struct {
	mu      sync.Mutex
	keys    auth.KeySet
	fetched time.Time // when keys were fetched
	tried   time.Time // when a fetch was last tried, successful or not
}

func newIdPKeys(allowPrivate bool, log *slog.Logger) *idpKeys {
	dialer := &net.Dialer{Timeout: 3 * time.Second}
	if !allowPrivate {
		dialer.Control = webhooks.GuardDial
	}
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would dial for us, past the guard
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    3 * time.Second,
		ResponseHeaderTimeout:  idpFetchTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConns:           10,
		IdleConnTimeout:        time.Minute,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   idpFetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" && !allowPrivate {
				return errors.New("redirected away from https")
			}
			return nil
		},
	}
	return &idpKeys{client: client, log: log, ttl: idpKeysTTL, minRefetch: idpMinRefetch, now: time.Now,
		sets: map[string]*idpKeySet{}}
}

func (k *idpKeys) set(jwksURL string) *idpKeySet {
	k.mu.Lock()
	defer k.mu.Unlock()
	set, ok := k.sets[jwksURL]
	if !ok {
		set = &idpKeySet{}
		k.sets[jwksURL] = set
	}
	return set
}

// lookup finds the key kid names in the provider's set, fetching the set when it has none, when
// it is older than ttl, or when kid is unknown (the provider rotated) and the last fetch is
// at least minRefetch ago. A failed fetch keeps the keys it had.
func (k *idpKeys) lookup(ctx context.Context, jwksURL, kid string) (auth.PublicKey, error) {
	set := k.set(jwksURL)
	set.mu.Lock()
	defer set.mu.Unlock()
	now := k.now()
	key, found := pickKey(set.keys, kid)
	if found && now.Sub(set.fetched) < k.ttl {
		return key, nil
	}
	if set.tried.IsZero() || now.Sub(set.tried) >= k.minRefetch {
		set.tried = now
		keys, err := k.fetch(ctx, jwksURL)
		if err != nil {
			k.log.Warn("identity provider's key set", "url", jwksURL, "err", err)
			if set.keys == nil {
				return auth.PublicKey{}, fmt.Errorf("%w: the identity provider's keys could not be read", auth.ErrUnknownKey)
			}
		} else {
			set.keys, set.fetched = keys, now
		}
		key, found = pickKey(set.keys, kid)
	}
	if !found {
		return auth.PublicKey{}, auth.ErrUnknownKey
	}
	return key, nil
}

// remember caches a key set just fetched (when an administrator sets the provider).
func (k *idpKeys) remember(jwksURL string, keys auth.KeySet) {
	set := k.set(jwksURL)
	set.mu.Lock()
	defer set.mu.Unlock()
	now := k.now()
	set.keys, set.fetched, set.tried = keys, now, now
}

// pickKey is the key named kid; a token without a kid may use a set's only key.
func pickKey(keys auth.KeySet, kid string) (auth.PublicKey, bool) {
	if kid == "" && len(keys) == 1 {
		for _, k := range keys {
			return k, true
		}
	}
	k, ok := keys[kid]
	return k, ok
}

func (k *idpKeys) fetch(ctx context.Context, jwksURL string) (auth.KeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, idpFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", jwksURL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, auth.MaxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	return auth.ParseJWKS(data)
}

// ---- POST /v1/auth/idp ----

type idpSignIn struct {
	OrganizationID string `json:"organization_id"`
	Token          string `json:"token"`
}

func (s *Server) handleIdPSignIn(w http.ResponseWriter, r *http.Request) {
	var in idpSignIn
	if !readJSON(w, r, &in) || !s.allowIdPAttempt(w, r) {
		return
	}
	refuse := func(detail string) {
		problem.Write(w, r, http.StatusUnauthorized, "bad-credentials", detail)
	}
	if in.Token == "" || len(in.Token) > maxIdPTokenLength || !rooms.ValidID(in.OrganizationID) {
		refuse("send organization_id and the identity provider's token")
		return
	}
	org, err := s.rooms.Organization(r.Context(), in.OrganizationID)
	if err != nil && !errors.Is(err, rooms.ErrNotFound) {
		s.internalError(w, r, err)
		return
	}
	if err != nil || org.IdentityProvider == nil {
		refuse("this organisation does not sign in through an identity provider")
		return
	}
	idp := org.IdentityProvider
	policy := auth.IdPPolicy{Issuer: idp.Issuer, Audience: idp.Audience, EmailClaim: idp.EmailClaim, Algorithms: idp.Algorithms}
	if len(policy.Algorithms) == 0 {
		policy.Algorithms = rooms.DefaultIdPAlgorithms()
	}
	email, err := auth.VerifyIdP(in.Token, policy, func(kid string) (auth.PublicKey, error) {
		return s.idp.lookup(r.Context(), idp.JWKSURL, kid)
	}, time.Now())
	if err != nil {
		s.log.Info("identity provider token refused", "org", org.ID, "err", err)
		refuse("the identity provider's token is not valid for this organisation: " + idpRefusal(err))
		return
	}
	sp, err := s.rooms.SpecialistByEmail(r.Context(), email)
	if err != nil && !errors.Is(err, rooms.ErrNotFound) {
		s.internalError(w, r, err)
		return
	}
	if err != nil || sp.OrgID != org.ID {
		// The provider vouched for this address: the organisation sees the refused attempt.
		ev := s.auditFromRequest(r, audit.ActionSignInFailed, "", email)
		ev.OrgID, ev.Actor, ev.Detail = org.ID, audit.Actor{Kind: audit.ActorSpecialist, Name: email}, "method=idp: no specialist of the organisation has this email"
		s.record(r.Context(), ev)
		refuse("no specialist of this organisation has the email the identity provider vouches for")
		return
	}
	ev := s.auditFromRequest(r, audit.ActionSignIn, "", sp.Email)
	ev.OrgID, ev.Actor, ev.Detail = sp.OrgID, audit.Actor{Kind: audit.ActorSpecialist, ID: sp.ID, Name: sp.Name}, "method=idp"
	s.record(r.Context(), ev)
	token, exp, err := s.issuer.IssueConsole(sp.OrgID, sp.ID, s.cfg.ConsoleTTL)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.LoginResult{Token: token, ExpiresAt: exp})
}

// allowIdPAttempt counts an exchange against the client address's sign-in budget (login-rate).
// Unlike passwords there is no per-account budget: a token cannot be guessed, and a budget per
// organisation would let anyone with garbage tokens lock a whole organisation out.
func (s *Server) allowIdPAttempt(w http.ResponseWriter, r *http.Request) bool {
	if ok, wait := s.limits.loginPerIP.take(clientIP(r), time.Now()); !ok {
		tooMany(w, r, wait, "too many sign-in attempts from your address: wait and try again")
		return false
	}
	return true
}

// idpRefusal says why a token was refused, without echoing the token.
func idpRefusal(err error) string {
	switch {
	case errors.Is(err, auth.ErrExpired):
		return "it has expired"
	case errors.Is(err, auth.ErrUnknownKey):
		return "it is signed with a key the provider does not publish"
	case errors.Is(err, auth.ErrWrongTarget):
		return "its issuer or audience is not the organisation's"
	case errors.Is(err, auth.ErrNoEmail):
		return "it carries no verified email"
	}
	return "its signature, algorithm or claims are not acceptable"
}

// ---- /v1/organization/identity-provider ----

type identityProviderView struct {
	JWKSURL    string   `json:"jwks_url"`
	Issuer     string   `json:"issuer"`
	Audience   string   `json:"audience"`
	EmailClaim string   `json:"email_claim"`
	Algorithms []string `json:"algorithms"`
}

func viewIdentityProvider(p *rooms.IdentityProvider) identityProviderView {
	out := identityProviderView{JWKSURL: p.JWKSURL, Issuer: p.Issuer, Audience: p.Audience, EmailClaim: p.EmailClaim, Algorithms: p.Algorithms}
	if out.EmailClaim == "" {
		out.EmailClaim = "email"
	}
	if len(out.Algorithms) == 0 {
		out.Algorithms = rooms.DefaultIdPAlgorithms()
	}
	return out
}

var claimName = regexp.MustCompile(`^[A-Za-z0-9_:./-]{1,100}$`)

// checkIdentityProvider validates an administrator's settings; the error names the field.
func (s *Server) checkIdentityProvider(in identityProviderView) (*rooms.IdentityProvider, error) {
	in.JWKSURL, in.Issuer, in.Audience = strings.TrimSpace(in.JWKSURL), strings.TrimSpace(in.Issuer), strings.TrimSpace(in.Audience)
	u, err := url.Parse(in.JWKSURL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || len(in.JWKSURL) > 2048:
		return nil, errors.New("jwks_url: an https URL")
	case u.Scheme == "http" && !s.cfg.IdPAllowPrivate:
		return nil, errors.New("jwks_url: must be https")
	case in.Issuer == "" || len(in.Issuer) > 500:
		return nil, errors.New("issuer: 1 to 500 characters, exactly the tokens' iss")
	case in.Audience == "" || len(in.Audience) > 500:
		return nil, errors.New("audience: 1 to 500 characters, one of the tokens' aud")
	case in.EmailClaim != "" && !claimName.MatchString(in.EmailClaim):
		return nil, errors.New("email_claim: a claim name (letters, digits, _ : . / -)")
	case len(in.Algorithms) > 10:
		return nil, errors.New("algorithms: at most 10")
	}
	for _, a := range in.Algorithms {
		if !auth.ValidIdPAlgorithm(a) {
			return nil, fmt.Errorf("algorithms: %q is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", a)
		}
	}
	p := &rooms.IdentityProvider{JWKSURL: in.JWKSURL, Issuer: in.Issuer, Audience: in.Audience, Algorithms: slices.Compact(slices.Sorted(slices.Values(in.Algorithms)))}
	if in.EmailClaim != "email" {
		p.EmailClaim = in.EmailClaim
	}
	return p, nil
}

func (s *Server) handleGetIdentityProvider(w http.ResponseWriter, r *http.Request) {
	org, err := s.rooms.Organization(r.Context(), callerOf(r).OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if org.IdentityProvider == nil {
		problem.Write(w, r, http.StatusNotFound, "not-found", "the organisation has no identity provider")
		return
	}
	writeJSON(w, http.StatusOK, viewIdentityProvider(org.IdentityProvider))
}

// handlePutIdentityProvider sets the provider. Its key set is fetched now, so that a wrong URL
// is found by the administrator and not by the first specialist signing in.
func (s *Server) handlePutIdentityProvider(w http.ResponseWriter, r *http.Request) {
	var in identityProviderView
	if !readJSON(w, r, &in) {
		return
	}
	p, err := s.checkIdentityProvider(in)
	if err != nil {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", err.Error())
		return
	}
	keys, err := s.idp.fetch(r.Context(), p.JWKSURL)
	if err != nil {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "jwks_url: the key set could not be read: "+err.Error())
		return
	}
	s.idp.remember(p.JWKSURL, keys)
	org, err := s.rooms.UpdateOrganization(r.Context(), callerOf(r).OrgID, func(o *rooms.Organization) error {
		o.IdentityProvider = p
		return nil
	})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSettingsChange, "", "identity_provider"))
	writeJSON(w, http.StatusOK, viewIdentityProvider(org.IdentityProvider))
}

func (s *Server) handleDeleteIdentityProvider(w http.ResponseWriter, r *http.Request) {
	had := false
	_, err := s.rooms.UpdateOrganization(r.Context(), callerOf(r).OrgID, func(o *rooms.Organization) error {
		had = o.IdentityProvider != nil
		o.IdentityProvider = nil
		return nil
	})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if !had {
		problem.Write(w, r, http.StatusNotFound, "not-found", "the organisation has no identity provider")
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSettingsChange, "", "identity_provider"))
	w.WriteHeader(http.StatusNoContent)
}
