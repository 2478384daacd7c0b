package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/auth"
)

// Links, console sign-ins and download URLs are signed with a key ring shared by every node
// through JetStream KV: a current key that signs, and retired keys that still verify until
// tokens signed with them can no longer be valid (the signing-key-retention setting). Rotating
// (POST /v1/signing-keys/rotate) needs no downtime: every node follows the ring's changes, and
// each token names its key in the JWT "kid" header.

const (
	keyringName   = "signing-keyring"
	legacyKeyName = "link-signing-key" // the single key of earlier versions
)

// keyring is the shared set of signing keys.
type keyring struct {
	Current auth.SigningKey `json:"current"`
	Retired []retiredKey    `json:"retired"`
}

type retiredKey struct {
	Key       auth.SigningKey `json:"key"`
	RetiredAt time.Time       `json:"retired_at"`
}

func (k keyring) older() []auth.SigningKey {
	out := make([]auth.SigningKey, 0, len(k.Retired))
	for _, r := range k.Retired {
		out = append(out, r.Key)
	}
	return out
}

// loadKeyring reads the ring (creating it on first start, from an earlier version's single
// key when there is one) and builds the issuer.
func (s *Server) loadKeyring(ctx context.Context) error {
	raw, err := s.rooms.UpdateSecret(ctx, keyringName, func(old []byte) ([]byte, error) {
		if old != nil {
			return old, nil
		}
		legacy, err := s.rooms.LoadOrCreateSecret(ctx, legacyKeyName, func() []byte {
			data, _ := json.Marshal(auth.NewSigningKey())
			return data
		})
		if err != nil {
			return nil, err
		}
		var ring keyring
		if err := json.Unmarshal(legacy, &ring.Current); err != nil {
			return nil, err
		}
		return json.Marshal(ring)
	})
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	var ring keyring
	if err := json.Unmarshal(raw, &ring); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	s.issuer, err = auth.NewIssuer(ring.Current, ring.older()...)
	return err
}

// followKeyring applies every change of the ring, made by any node, to this node's issuer.
func (s *Server) followKeyring(ctx context.Context) error {
	return s.rooms.WatchSecret(ctx, keyringName, func(raw []byte) {
		var ring keyring
		if err := json.Unmarshal(raw, &ring); err != nil {
			s.log.Error("signing keys: unreadable key ring", "err", err)
			return
		}
		if err := s.issuer.SetKeys(ring.Current, ring.older()...); err != nil {
			s.log.Error("signing keys", "err", err)
			return
		}
		s.log.Info("signing keys loaded", "current", ring.Current.ID, "retired", len(ring.Retired))
	})
}

// rotateSigningKey retires the current key and makes a new one current; retired keys older
// than the retention are dropped, and tokens signed with them stop working.
func (s *Server) rotateSigningKey(ctx context.Context, now time.Time) (keyring, error) {
	var ring keyring
	_, err := s.rooms.UpdateSecret(ctx, keyringName, func(old []byte) ([]byte, error) {
		ring = keyring{}
		if err := json.Unmarshal(old, &ring); err != nil {
			return nil, err
		}
		kept := []retiredKey{{Key: ring.Current, RetiredAt: now}}
		for _, r := range ring.Retired {
			if now.Sub(r.RetiredAt) < s.cfg.SigningKeyRetention {
				kept = append(kept, r)
			}
		}
		ring = keyring{Current: auth.NewSigningKey(), Retired: kept}
		return json.Marshal(ring)
	})
	return ring, err
}

func (s *Server) handleRotateSigningKey(w http.ResponseWriter, r *http.Request) {
	ring, err := s.rotateSigningKey(r.Context(), time.Now())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSigningKeyRotate, "", ring.Current.ID))
	out := struct {
		CurrentKeyID string   `json:"current_key_id"`
		AcceptedIDs  []string `json:"accepted_key_ids"`
	}{CurrentKeyID: ring.Current.ID, AcceptedIDs: []string{ring.Current.ID}}
	for _, k := range ring.Retired {
		out.AcceptedIDs = append(out.AcceptedIDs, k.Key.ID)
	}
	writeJSON(w, http.StatusOK, out)
}
