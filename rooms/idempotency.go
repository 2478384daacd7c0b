package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-video/assist/rooms/bus"
)

// Idempotency remembers the answers to API requests that carried an Idempotency-Key, so a
// client that retries (after a timeout, a dropped connection) gets the first answer again
// instead of a second resource. Records live in a JetStream KV bucket shared by every node and
// expire after IdempotencyWindow.
type Idempotency struct {
	kv jetstream.KeyValue
}

// IdempotencyWindow is how long an answer is remembered.
const IdempotencyWindow = 24 * time.Hour

const bucketIdempotency = "assist_idempotency"

// Errors of Claim.
var (
	ErrRequestInProgress = errors.New("a request with this Idempotency-Key is still being processed")
	ErrKeyReused         = errors.New("this Idempotency-Key was used for a different request")
)

// StoredResponse is a remembered answer.
type StoredResponse struct {
	RequestHash string `json:"request_hash"`
	Done        bool   `json:"done"`
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// OpenIdempotency creates the bucket if it is missing.
func OpenIdempotency(ctx context.Context, b *bus.Bus) (*Idempotency, error) {
	kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   bucketIdempotency,
		History:  1,
		TTL:      IdempotencyWindow,
		Storage:  jetstream.FileStorage,
		Replicas: b.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("rooms: bucket %s: %w", bucketIdempotency, err)
	}
	return &Idempotency{kv: kv}, nil
}

// Claim reserves key for a request whose content hashes to requestHash. It returns the stored
// answer when the same request was answered before, ErrRequestInProgress while the first one
// runs, ErrKeyReused for a different request under the same key, or (nil, nil) when the
// caller should go ahead and then Complete or Release the key.
func (i *Idempotency) Claim(ctx context.Context, key, requestHash string) (*StoredResponse, error) {
	pending, _ := json.Marshal(StoredResponse{RequestHash: requestHash})
	_, err := i.kv.Create(ctx, key, pending)
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, err
	}
	prior, _, err := getJSON[StoredResponse](ctx, i.kv, key)
	if errors.Is(err, ErrNotFound) { // expired or released just now: try once more
		if _, err := i.kv.Create(ctx, key, pending); err == nil {
			return nil, nil
		}
		return nil, ErrRequestInProgress
	}
	switch {
	case err != nil:
		return nil, err
	case prior.RequestHash != requestHash:
		return nil, ErrKeyReused
	case !prior.Done:
		return nil, ErrRequestInProgress
	}
	return prior, nil
}

// Complete stores the answer to a claimed key.
func (i *Idempotency) Complete(ctx context.Context, key string, resp StoredResponse) error {
	resp.Done = true
	data, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = i.kv.Put(ctx, key, data)
	return err
}

// Release forgets a claimed key, so that a retry runs again (after a failure on our side).
func (i *Idempotency) Release(ctx context.Context, key string) error {
	return i.kv.Purge(ctx, key)
}
