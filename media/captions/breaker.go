package captions

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// BreakerConfig tunes a Breaker; zero fields take the defaults.
type BreakerConfig struct {
	// Failures in a row that open the breaker; default 3.
	Failures int
	// MinBackoff is how long the breaker first stays open; it doubles each time a probe
	// fails, up to MaxBackoff. Defaults 1 s and 30 s.
	MinBackoff, MaxBackoff time.Duration
}

// Breaker keeps callers off a provider that keeps failing: after Failures errors in a row it
// opens and refuses calls for a backoff, then lets one call through as a probe; the probe's
// success closes it, its failure opens it again for twice as long. One Breaker may be shared
// by the pipelines of every session that use the same provider, so that a dead provider is
// probed once per backoff, not once per session.
type Breaker struct {
	name string
	cfg  BreakerConfig
	log  *slog.Logger
	now  func() time.Time

	mu        sync.Mutex
	failures  int
	open      bool
	until     time.Time
	backoff   time.Duration
	probing   bool
	probeTime time.Time
}

// NewBreaker builds a closed breaker; name labels its logs ("transcriber", "translator").
func NewBreaker(name string, cfg BreakerConfig, log *slog.Logger) *Breaker {
	if cfg.Failures <= 0 {
		cfg.Failures = 3
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Breaker{name: name, cfg: cfg, log: log, now: time.Now}
}

// Allow reports whether a call may go out now. Every allowed call must be followed by
// Record with its outcome.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	now := b.now()
	if now.Before(b.until) {
		return false
	}
	// A probe that never reported (its caller went away) does not hold the breaker forever.
	if b.probing && now.Sub(b.probeTime) < b.cfg.MaxBackoff {
		return false
	}
	b.probing, b.probeTime = true, now
	return true
}

// Record takes the outcome of an allowed call. A call cancelled by its caller says nothing
// about the provider and only frees the probe.
func (b *Breaker) Record(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasProbe := b.probing
	b.probing = false
	switch {
	case err == nil:
		if b.open {
			b.log.Info("provider answers again: captions resume", "provider", b.name)
		}
		b.failures, b.open, b.backoff = 0, false, 0
	case errors.Is(err, context.Canceled):
	default:
		b.failures++
		if b.open && !wasProbe {
			return // a call that left before the breaker opened
		}
		if !b.open && b.failures < b.cfg.Failures {
			return
		}
		if b.backoff == 0 {
			b.backoff = b.cfg.MinBackoff
		} else {
			b.backoff = min(2*b.backoff, b.cfg.MaxBackoff)
		}
		b.open, b.until = true, b.now().Add(b.backoff)
		b.log.Warn("provider failing: captions paused", "provider", b.name, "failures", b.failures,
			"retry_in", b.backoff, "err", err)
	}
}

// Open reports whether the breaker is refusing calls.
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}
