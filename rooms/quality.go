package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-video/assist/rooms/bus"
)

// Call quality samples: every few seconds, for each participant of a call, what the SFU
// measured of their connection and what their page measured itself. They are kept in the
// JetStream stream ASSIST_QUALITY, one subject per session, bounded per session (the oldest
// go first) and in age (a little over the longest analytics window).
const (
	streamQuality         = "ASSIST_QUALITY"
	qualitySubjectRoot    = "assist.quality"
	MaxQualitySamples     = 4000 // per session
	qualityRetention      = 400 * 24 * time.Hour
	maxQualityReadSamples = 500_000 // one read across an organisation's sessions
)

// Sources of a quality sample.
const (
	QualityFromSFU    = "sfu"
	QualityFromClient = "client"
)

// QualitySample is one participant's call quality over one interval, from the participant's
// side: Send is what they send to the server, Receive (and LossPct, JitterMs) what they get.
// Figures that were not measured are nil.
type QualitySample struct {
	At            time.Time      `json:"at"`
	SessionID     string         `json:"session_id"`
	ParticipantID string         `json:"participant_id"`
	Role          Role           `json:"role,omitempty"`
	Source        string         `json:"source"` // QualityFromSFU or QualityFromClient
	IntervalMs    int            `json:"interval_ms"`
	RTTMs         *float64       `json:"rtt_ms,omitempty"`
	JitterMs      *float64       `json:"jitter_ms,omitempty"`
	LossPct       *float64       `json:"loss_pct,omitempty"`
	SendLossPct   *float64       `json:"send_loss_pct,omitempty"`
	SendKbps      *float64       `json:"send_kbps,omitempty"`
	ReceiveKbps   *float64       `json:"receive_kbps,omitempty"`
	FrameRate     *float64       `json:"frame_rate,omitempty"`
	Tracks        []TrackQuality `json:"tracks,omitempty"` // the SFU's, per track
}

// TrackQuality is one track of an SFU sample: one the participant sends ("send") or receives
// ("receive", from PublisherID).
type TrackQuality struct {
	TrackID     string   `json:"track_id"`
	Kind        string   `json:"kind"`
	Direction   string   `json:"direction"`
	PublisherID string   `json:"publisher_id,omitempty"`
	Kbps        *float64 `json:"kbps,omitempty"`
	LossPct     *float64 `json:"loss_pct,omitempty"`
	JitterMs    *float64 `json:"jitter_ms,omitempty"`
	RTTMs       *float64 `json:"rtt_ms,omitempty"`
}

// QualityLog keeps and reads quality samples.
type QualityLog struct {
	bus *bus.Bus
	log *slog.Logger
}

func qualitySubject(orgID, sessionID string) string {
	return fmt.Sprintf("%s.%s.%s", qualitySubjectRoot, orgID, sessionID)
}

// OpenQuality creates the quality stream if it is missing.
func OpenQuality(ctx context.Context, b *bus.Bus, log *slog.Logger) (*QualityLog, error) {
	_, err := b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              streamQuality,
		Subjects:          []string{qualitySubjectRoot + ".>"},
		Storage:           jetstream.FileStorage,
		MaxAge:            qualityRetention,
		MaxMsgsPerSubject: MaxQualitySamples,
		Discard:           jetstream.DiscardOld,
		Replicas:          b.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("rooms: stream %s: %w", streamQuality, err)
	}
	return &QualityLog{bus: b, log: log}, nil
}

// Add keeps one sample of a session of the organisation.
func (q *QualityLog) Add(ctx context.Context, orgID string, s QualitySample) error {
	if !ValidID(orgID) || !ValidID(s.SessionID) {
		return ErrNotFound
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = q.bus.JS.Publish(ctx, qualitySubject(orgID, s.SessionID), data)
	return err
}

// Session returns a session's samples, oldest first.
func (q *QualityLog) Session(ctx context.Context, orgID, sessionID string) ([]QualitySample, error) {
	if !ValidID(orgID) || !ValidID(sessionID) {
		return nil, ErrNotFound
	}
	return q.read(ctx, jetstream.ConsumerConfig{
		FilterSubject: qualitySubject(orgID, sessionID),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
}

// Since returns the samples of all the organisation's sessions recorded since a time, oldest
// first; at most maxQualityReadSamples (the latest are dropped beyond that).
func (q *QualityLog) Since(ctx context.Context, orgID string, since time.Time) ([]QualitySample, error) {
	if !ValidID(orgID) {
		return nil, ErrNotFound
	}
	return q.read(ctx, jetstream.ConsumerConfig{
		FilterSubject: qualitySubject(orgID, "*"),
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &since,
	})
}

// read drains a short-lived consumer of our own, deleted when done (see Store.Timeline).
func (q *QualityLog) read(ctx context.Context, cfg jetstream.ConsumerConfig) ([]QualitySample, error) {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.InactiveThreshold = 30 * time.Second
	cfg.MemoryStorage = true
	cons, err := q.bus.JS.CreateConsumer(ctx, streamQuality, cfg)
	if err != nil {
		return nil, err
	}
	info := cons.CachedInfo()
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := q.bus.JS.DeleteConsumer(dctx, streamQuality, info.Name); err != nil {
			q.log.Warn("free quality consumer", "name", info.Name, "err", err)
		}
	}()
	pending := min(int(info.NumPending), maxQualityReadSamples)
	out := make([]QualitySample, 0, min(pending, MaxQualitySamples))
	for read := 0; read < pending; {
		batch, err := cons.Fetch(min(pending-read, 512), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			var s QualitySample
			if err := json.Unmarshal(msg.Data(), &s); err != nil {
				q.log.Warn("corrupt quality sample", "subject", msg.Subject(), "err", err)
				continue
			}
			out = append(out, s)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			break
		}
		read += got
	}
	return out, nil
}
