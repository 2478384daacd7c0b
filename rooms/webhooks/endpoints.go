package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Endpoint is where an organisation receives webhooks. Secret is only filled in by Create and
// RotateSecret: it is shown once.
type Endpoint struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"organization_id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"`
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
}

// Wants reports whether the endpoint subscribes to events of type t.
func (e *Endpoint) Wants(t string) bool {
	return slices.Contains(e.Events, AllEvents) || slices.Contains(e.Events, t)
}

// endpointRecord is an endpoint as stored, with the secrets that sign its requests.
type endpointRecord struct {
	Endpoint
	PreviousSecret      string    `json:"previous_secret,omitempty"`
	PreviousSecretUntil time.Time `json:"previous_secret_until,omitzero"`
}

// public is the endpoint without its secret.
func (r *endpointRecord) public() *Endpoint {
	e := r.Endpoint
	e.Secret = ""
	e.Events = slices.Clone(e.Events)
	return &e
}

// signingSecrets are the secrets that sign a request at now: the current one, and the
// previous one during the grace period after a rotation.
func (r *endpointRecord) signingSecrets(now time.Time) []string {
	if r.PreviousSecret != "" && now.Before(r.PreviousSecretUntil) {
		return []string{r.Secret, r.PreviousSecret}
	}
	return []string{r.Secret}
}

func endpointKey(orgID, id string) string { return orgID + "." + id }

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Create registers an endpoint for the organisation, enabled, and returns it with its secret.
// events lists event types (see EventTypes), or AllEvents.
func (w *Webhooks) Create(ctx context.Context, orgID, rawURL string, events []string) (*Endpoint, error) {
	if !validID(orgID) {
		return nil, ErrInvalidID
	}
	u, err := w.checkURL(rawURL)
	if err != nil {
		return nil, err
	}
	evs, err := normaliseEvents(events)
	if err != nil {
		return nil, err
	}
	existing, err := loadAll[endpointRecord](ctx, w.endpoints, orgID+".*")
	if err != nil {
		return nil, err
	}
	if len(existing) >= maxEndpointsPerOrg {
		return nil, ErrTooManyEndpoints
	}
	rec := endpointRecord{Endpoint: Endpoint{
		ID:        newID("whe_"),
		OrgID:     orgID,
		URL:       u,
		Events:    evs,
		Secret:    newSecret(),
		Enabled:   true,
		CreatedAt: w.now().UTC(),
	}}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if _, err := w.endpoints.Create(ctx, endpointKey(orgID, rec.ID), data); err != nil {
		return nil, fmt.Errorf("webhooks: store endpoint: %w", err)
	}
	e := rec.Endpoint
	e.Events = slices.Clone(evs)
	return &e, nil
}

// List returns the organisation's endpoints, oldest first, without secrets.
func (w *Webhooks) List(ctx context.Context, orgID string) ([]Endpoint, error) {
	if !validID(orgID) {
		return nil, ErrInvalidID
	}
	recs, err := loadAll[endpointRecord](ctx, w.endpoints, orgID+".*")
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, 0, len(recs))
	for i := range recs {
		out = append(out, *recs[i].public())
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Get returns one endpoint without its secret.
func (w *Webhooks) Get(ctx context.Context, orgID, id string) (*Endpoint, error) {
	rec, _, err := w.loadEndpoint(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	return rec.public(), nil
}

// Delete removes an endpoint. Its deliveries still queued fail with "endpoint deleted".
func (w *Webhooks) Delete(ctx context.Context, orgID, id string) error {
	if _, _, err := w.loadEndpoint(ctx, orgID, id); err != nil {
		return err
	}
	return w.endpoints.Delete(ctx, endpointKey(orgID, id))
}

// RotateSecret gives the endpoint a new secret and returns the endpoint with it. The old
// secret keeps signing alongside the new one for Config.SecretGrace.
func (w *Webhooks) RotateSecret(ctx context.Context, orgID, id string) (*Endpoint, error) {
	rec, err := w.updateEndpoint(ctx, orgID, id, func(r *endpointRecord) {
		r.PreviousSecret = r.Secret
		r.PreviousSecretUntil = w.now().Add(w.cfg.SecretGrace).UTC()
		r.Secret = newSecret()
	})
	if err != nil {
		return nil, err
	}
	e := rec.Endpoint
	return &e, nil
}

// SetEnabled turns deliveries to an endpoint on or off. While it is off, events are not queued
// for it and queued deliveries fail with "endpoint disabled".
func (w *Webhooks) SetEnabled(ctx context.Context, orgID, id string, enabled bool) (*Endpoint, error) {
	rec, err := w.updateEndpoint(ctx, orgID, id, func(r *endpointRecord) { r.Enabled = enabled })
	if err != nil {
		return nil, err
	}
	return rec.public(), nil
}

func (w *Webhooks) loadEndpoint(ctx context.Context, orgID, id string) (*endpointRecord, uint64, error) {
	if !validID(orgID) || !validID(id) {
		return nil, 0, ErrNotFound
	}
	return getJSON[endpointRecord](ctx, w.endpoints, endpointKey(orgID, id))
}

func (w *Webhooks) updateEndpoint(ctx context.Context, orgID, id string, change func(*endpointRecord)) (*endpointRecord, error) {
	for range maxCASAttempts {
		rec, rev, err := w.loadEndpoint(ctx, orgID, id)
		if err != nil {
			return nil, err
		}
		change(rec)
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		_, err = w.endpoints.Update(ctx, endpointKey(orgID, id), data, rev)
		if err == nil {
			return rec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, err
		}
	}
	return nil, ErrConflict
}

// checkURL validates an endpoint URL and returns it normalised. Non-public IP literals and
// localhost names are refused here already, for a clear error at registration; the dial-time
// guard is what actually protects (DNS can change after registration).
func (w *Webhooks) checkURL(raw string) (string, error) {
	if raw == "" || len(raw) > maxURLLength {
		return "", fmt.Errorf("%w: must be 1 to %d characters", ErrInvalidURL, maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%w: scheme must be http or https", ErrInvalidURL)
	case u.Opaque != "" || u.Hostname() == "":
		return "", fmt.Errorf("%w: needs a host", ErrInvalidURL)
	case u.User != nil:
		return "", fmt.Errorf("%w: credentials in the URL are not allowed; authenticate with the signature", ErrInvalidURL)
	case u.Fragment != "" || u.RawFragment != "":
		return "", fmt.Errorf("%w: fragments are not sent, remove it", ErrInvalidURL)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%w: bad port %q", ErrInvalidURL, p)
		}
	}
	if !w.cfg.AllowPrivateTargets {
		host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return "", fmt.Errorf("%w: %s", ErrForbiddenTarget, host)
		}
		if ip, err := netip.ParseAddr(host); err == nil && !publicAddr(ip) {
			return "", fmt.Errorf("%w: %s", ErrForbiddenTarget, ip)
		}
	}
	return u.String(), nil
}

func normaliseEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: subscribe to at least one event type, or %q", ErrUnknownEventType, AllEvents)
	}
	out := make([]string, 0, len(events))
	for _, e := range events {
		if e != AllEvents && !knownType(e) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownEventType, e)
		}
		out = append(out, e)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if slices.Contains(out, AllEvents) {
		out = []string{AllEvents}
	}
	return out, nil
}
