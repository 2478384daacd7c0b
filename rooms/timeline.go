package rooms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The timeline of a session is what happened in it that people made: chat, annotations,
// snapshots, shared files, locations, camera commands. Each entry is an opaque, already-encoded
// message (the signaling layer owns its schema), kept in the JetStream stream ASSIST_TIMELINE
// and relayed live to every node. Pointer moves and the like are live only: relayed, never kept.
const (
	streamTimeline      = "ASSIST_TIMELINE"
	timelineSubjectRoot = "assist.timeline"
	liveSubjectRoot     = "assist.live"
	maxHistory          = 2000
	timelineRetention   = 90 * 24 * time.Hour
)

func timelineSubject(orgID, sessionID, kind string) string {
	return fmt.Sprintf("%s.%s.%s.%s", timelineSubjectRoot, orgID, sessionID, kind)
}

func (s *Store) openTimeline(ctx context.Context) error {
	_, err := s.bus.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     streamTimeline,
		Subjects: []string{timelineSubjectRoot + ".>"},
		Storage:  jetstream.FileStorage,
		MaxAge:   timelineRetention,
		Replicas: s.bus.Replicas,
	})
	if err != nil {
		return fmt.Errorf("rooms: stream %s: %w", streamTimeline, err)
	}
	return nil
}

// AppendTimeline keeps an entry and relays it to everyone watching the session.
func (s *Store) AppendTimeline(ctx context.Context, orgID, sessionID, kind string, entry []byte) error {
	if !ValidID(orgID) || !ValidID(sessionID) || !ValidID(kind) {
		return ErrNotFound
	}
	_, err := s.bus.JS.Publish(ctx, timelineSubject(orgID, sessionID, kind), entry)
	return err
}

// PublishLive relays an entry to everyone watching the session without keeping it.
func (s *Store) PublishLive(orgID, sessionID string, entry []byte) error {
	return s.bus.Conn.Publish(fmt.Sprintf("%s.%s.%s", liveSubjectRoot, orgID, sessionID), entry)
}

// Timeline returns a session's kept entries, oldest first (at most the last 2000).
func (s *Store) Timeline(ctx context.Context, orgID, sessionID string) ([][]byte, error) {
	if !ValidID(orgID) || !ValidID(sessionID) {
		return nil, ErrNotFound
	}
	// A short-lived pull consumer of our own, deleted when done: under load, consumers left
	// to expire hit the stream's consumer limit.
	cons, err := s.bus.JS.CreateConsumer(ctx, streamTimeline, jetstream.ConsumerConfig{
		FilterSubject:     timelineSubject(orgID, sessionID, "*"),
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 30 * time.Second,
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, err
	}
	info := cons.CachedInfo()
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := s.bus.JS.DeleteConsumer(dctx, streamTimeline, info.Name); err != nil {
			s.log.Warn("free timeline consumer", "name", info.Name, "err", err)
		}
	}()
	pending := int(info.NumPending)
	var out [][]byte
	for len(out) < pending {
		batch, err := cons.Fetch(min(pending-len(out), 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for msg := range batch.Messages() {
			out = append(out, msg.Data())
			got++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			break
		}
	}
	if len(out) > maxHistory {
		out = out[len(out)-maxHistory:]
	}
	return out, nil
}

// TimelineWatch is a live feed of a session's timeline entries and live messages.
type TimelineWatch struct {
	// Entries delivers them in the order NATS does.
	Entries <-chan []byte
	// Overflowed is closed if the reader fell so far behind that an entry was dropped: its
	// owner should close the client's socket, which reloads the history when it comes back.
	Overflowed <-chan struct{}
	stop       func()
}

// Stop ends the feed.
func (w *TimelineWatch) Stop() { w.stop() }

// WatchTimeline follows a session's timeline and live messages as they happen, from any node.
func (s *Store) WatchTimeline(orgID, sessionID string) (*TimelineWatch, error) {
	ch := make(chan []byte, 512)
	overflowed := make(chan struct{})
	var once sync.Once
	deliver := func(m *nats.Msg) {
		select {
		case ch <- m.Data:
		default:
			once.Do(func() { close(overflowed) })
		}
	}
	kept, err := s.bus.Conn.Subscribe(timelineSubject(orgID, sessionID, "*"), deliver)
	if err != nil {
		return nil, err
	}
	live, err := s.bus.Conn.Subscribe(fmt.Sprintf("%s.%s.%s", liveSubjectRoot, orgID, sessionID), deliver)
	if err != nil {
		_ = kept.Unsubscribe()
		return nil, err
	}
	return &TimelineWatch{Entries: ch, Overflowed: overflowed,
		stop: func() { _ = kept.Unsubscribe(); _ = live.Unsubscribe() }}, nil
}
