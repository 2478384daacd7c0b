package rooms

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// Shared secrets (signing keys) live in the config bucket, under "secret.{name}"; every node
// reads the same value and follows its changes.

func secretKey(name string) string { return "secret." + name }

// UpdateSecret changes a shared secret with compare-and-set; change sees the latest value
// (nil when there is none yet) and returns the new one.
func (s *Store) UpdateSecret(ctx context.Context, name string, change func(old []byte) ([]byte, error)) ([]byte, error) {
	key := secretKey(name)
	for range maxCASAttempts {
		var old []byte
		var rev uint64
		entry, err := s.config.Get(ctx, key)
		switch {
		case err == nil:
			old, rev = entry.Value(), entry.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, err
		}
		next, err := change(old)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			_, err = s.config.Create(ctx, key, next)
		} else {
			_, err = s.config.Update(ctx, key, next, rev)
		}
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, err
		}
	}
	return nil, ErrConflict
}

// WatchSecret calls changed with every new value of a shared secret until ctx ends (the
// current value first).
func (s *Store) WatchSecret(ctx context.Context, name string, changed func([]byte)) error {
	w, err := s.config.Watch(ctx, secretKey(name))
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-w.Updates():
			if !ok {
				return errors.New("rooms: secret watch closed")
			}
			if entry != nil && entry.Operation() == jetstream.KeyValuePut {
				changed(entry.Value())
			}
		}
	}
}
