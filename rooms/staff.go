package rooms

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// StaffRole is what a specialist may do in their organisation, beyond taking calls.
type StaffRole string

// Staff roles, each allowed what the one before is and more.
const (
	StaffSpecialist StaffRole = "specialist" // takes sessions and appointments
	StaffSupervisor StaffRole = "supervisor" // also reads the audit trail and analytics
	StaffAdmin      StaffRole = "admin"      // also manages specialists, API keys, webhooks and policy
)

// Valid says whether r is a known role.
func (r StaffRole) Valid() bool {
	return r == StaffSpecialist || r == StaffSupervisor || r == StaffAdmin
}

// EffectiveRole is the specialist's role; records from before roles existed are the
// bootstrapped administrators.
func (sp *Specialist) EffectiveRole() StaffRole {
	if sp.Role == "" {
		return StaffAdmin
	}
	return sp.Role
}

// API key scopes: what a key may do. A key is always confined to its own organisation, except
// with ScopePlatform, which manages organisations themselves.
const (
	ScopeSessions       = "sessions"        // sessions, links, recordings, participants
	ScopeSessionsDelete = "sessions.delete" // delete sessions and everything they stored
	ScopeAppointments   = "appointments"
	ScopeWebhooks       = "webhooks"
	ScopeAudit          = "audit" // audit trail and analytics
	ScopeAdmin          = "admin" // specialists, API keys, organisation policy
	ScopePlatform       = "platform"
)

// AllScopes are every scope, in a stable order.
func AllScopes() []string {
	return []string{ScopeSessions, ScopeSessionsDelete, ScopeAppointments, ScopeWebhooks, ScopeAudit, ScopeAdmin, ScopePlatform}
}

// DefaultScopes are what a key gets when none are asked for: everything in its organisation.
func DefaultScopes() []string {
	return []string{ScopeSessions, ScopeSessionsDelete, ScopeAppointments, ScopeWebhooks, ScopeAudit, ScopeAdmin}
}

// EffectiveScopes are the key's scopes; keys from before scopes existed have the defaults.
func (k *APIKey) EffectiveScopes() []string {
	if len(k.Scopes) == 0 {
		return DefaultScopes()
	}
	return k.Scopes
}

// ErrUnknownScope is returned for a scope that does not exist.
var ErrUnknownScope = errors.New("unknown scope")

// CheckScopes validates requested scopes and returns them sorted without repeats.
func CheckScopes(scopes []string) ([]string, error) {
	out := slices.Compact(slices.Sorted(slices.Values(scopes)))
	for _, sc := range out {
		if !slices.Contains(AllScopes(), sc) {
			return nil, errors.Join(ErrUnknownScope, errors.New("scope "+sc+" is not one of "+strings.Join(AllScopes(), ", ")))
		}
	}
	return out, nil
}

// ListSpecialists lists an organisation's specialists, sorted by id.
func (s *Store) ListSpecialists(ctx context.Context, orgID string) ([]Specialist, error) {
	if !ValidID(orgID) {
		return nil, nil
	}
	lister, err := s.specialists.ListKeysFiltered(ctx, orgID+".*")
	if err != nil {
		return nil, err
	}
	var keys []string
	for key := range lister.Keys() {
		keys = append(keys, key)
	}
	_ = lister.Stop()
	slices.Sort(keys)
	out := make([]Specialist, 0, len(keys))
	for _, key := range keys {
		sp, _, err := getJSON[Specialist](ctx, s.specialists, key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *sp)
	}
	return out, nil
}

// ListAPIKeys lists an organisation's API keys (by hash, never the secret), sorted by id.
func (s *Store) ListAPIKeys(ctx context.Context, orgID string) ([]APIKey, error) {
	lister, err := s.apiKeys.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var hashes []string
	for key := range lister.Keys() {
		hashes = append(hashes, key)
	}
	_ = lister.Stop()
	var out []APIKey
	for _, h := range hashes {
		k, _, err := getJSON[APIKey](ctx, s.apiKeys, h)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if k.OrgID == orgID {
			if k.ID == "" { // keys from before ids existed are named by their hash
				k.ID = "key_" + k.Hash[:16]
			}
			out = append(out, *k)
		}
	}
	slices.SortFunc(out, func(a, b APIKey) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RevokeAPIKey deletes one of an organisation's keys by its id; requests bearing it fail from
// then on.
func (s *Store) RevokeAPIKey(ctx context.Context, orgID, id string) error {
	keys, err := s.ListAPIKeys(ctx, orgID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == id {
			return s.apiKeys.Purge(ctx, k.Hash)
		}
	}
	return ErrNotFound
}
