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

// The specialists' chat: a team channel per organisation and one-to-one channels between its
// specialists. Messages are kept in a JetStream stream, one subject per channel
// (assist.teamchat.<org>.team, assist.teamchat.<org>.dm.<a>.<b> with a < b), so a channel's
// history is read by subject and never crosses organisations. Read markers (the last message
// each specialist has read in each channel) are in a KV bucket.

const (
	streamTeamChat       = "ASSIST_TEAMCHAT"
	teamChatSubjectRoot  = "assist.teamchat."
	bucketTeamChatRead   = "assist_teamchat_read"
	teamChatRetention    = 90 * 24 * time.Hour
	teamChatPerChannel   = 1000 // messages kept per channel
	teamChatDefaultLimit = 100
)

// TeamChannel names the organisation's team channel; a one-to-one channel is named, by each of
// its two specialists, with the other one's id.
const TeamChannel = "team"

// ErrSelfMessage refuses a one-to-one message to oneself.
var ErrSelfMessage = errors.New("a message to oneself")

// TeamMessage is one chat message as kept.
type TeamMessage struct {
	Seq      uint64    `json:"-"`
	OrgID    string    `json:"org_id"`
	From     string    `json:"from"`
	FromName string    `json:"from_name"`
	To       string    `json:"to"` // a specialist id, or "team"
	Text     string    `json:"text"`
	SentAt   time.Time `json:"sent_at"`
}

// ChannelFor is the message's channel as specialist sees it: "team", or the other specialist.
func (m *TeamMessage) ChannelFor(specialistID string) string {
	switch {
	case m.To == TeamChannel:
		return TeamChannel
	case m.From == specialistID:
		return m.To
	}
	return m.From
}

// TeamChat is the chat's stream and read markers.
type TeamChat struct {
	stream jetstream.Stream
	js     jetstream.JetStream
	reads  jetstream.KeyValue
	now    func() time.Time
}

// OpenTeamChat creates the chat's stream and bucket if they are missing.
func OpenTeamChat(ctx context.Context, b *bus.Bus) (*TeamChat, error) {
	stream, err := b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              streamTeamChat,
		Subjects:          []string{teamChatSubjectRoot + ">"},
		Storage:           jetstream.FileStorage,
		MaxAge:            teamChatRetention,
		MaxMsgsPerSubject: teamChatPerChannel,
		Replicas:          b.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("rooms: stream %s: %w", streamTeamChat, err)
	}
	reads, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucketTeamChatRead, History: 1, Storage: jetstream.FileStorage, Replicas: b.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("rooms: bucket %s: %w", bucketTeamChatRead, err)
	}
	return &TeamChat{stream: stream, js: b.JS, reads: reads, now: time.Now}, nil
}

// channelSubject is where a channel's messages are kept: me and channel as me sees it.
func channelSubject(orgID, me, channel string) string {
	if channel == TeamChannel {
		return teamChatSubjectRoot + orgID + ".team"
	}
	a, b := me, channel
	if b < a {
		a, b = b, a
	}
	return teamChatSubjectRoot + orgID + ".dm." + a + "." + b
}

// Post keeps a message from a specialist to a colleague or the team. The caller checks that
// the colleague belongs to the organisation.
func (c *TeamChat) Post(ctx context.Context, orgID, from, fromName, to, text string) (*TeamMessage, error) {
	if !ValidID(orgID) || !ValidID(from) || (to != TeamChannel && !ValidID(to)) {
		return nil, ErrNotFound
	}
	if to == from {
		return nil, ErrSelfMessage
	}
	m := &TeamMessage{OrgID: orgID, From: from, FromName: fromName, To: to, Text: text, SentAt: c.now().UTC()}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	ack, err := c.js.Publish(ctx, channelSubject(orgID, from, to), data)
	if err != nil {
		return nil, fmt.Errorf("rooms: team chat: %w", err)
	}
	m.Seq = ack.Sequence
	return m, nil
}

// History reads the latest messages (at most limit per channel, oldest first) of the channels
// specialist takes part in; channel "" means all of them, otherwise one ("team" or a
// colleague's id).
func (c *TeamChat) History(ctx context.Context, orgID, specialistID, channel string, limit int) ([]TeamMessage, error) {
	if !ValidID(orgID) || !ValidID(specialistID) {
		return nil, ErrNotFound
	}
	if limit <= 0 {
		limit = teamChatDefaultLimit
	}
	filter := teamChatSubjectRoot + orgID + ".>"
	if channel != "" {
		filter = channelSubject(orgID, specialistID, channel)
	}
	info, err := c.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, err
	}
	if len(info.State.Subjects) == 0 {
		return nil, nil
	}
	cons, err := c.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, err
	}
	perChannel := map[string][]TeamMessage{}
	var order []string
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		last := false
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			last = meta.NumPending == 0
			var m TeamMessage
			if json.Unmarshal(msg.Data(), &m) != nil || m.OrgID != orgID {
				continue
			}
			if m.To != TeamChannel && m.From != specialistID && m.To != specialistID {
				continue // a one-to-one channel between two colleagues
			}
			m.Seq = meta.Sequence.Stream
			ch := m.ChannelFor(specialistID)
			if _, ok := perChannel[ch]; !ok {
				order = append(order, ch)
			}
			msgs := append(perChannel[ch], m)
			if len(msgs) > limit {
				msgs = msgs[len(msgs)-limit:]
			}
			perChannel[ch] = msgs
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), context.DeadlineExceeded) {
			return nil, batch.Error()
		}
		if last || n == 0 {
			break
		}
	}
	var out []TeamMessage
	for _, ch := range order {
		out = append(out, perChannel[ch]...)
	}
	sortBySeq(out)
	return out, nil
}

func sortBySeq(msgs []TeamMessage) {
	for i := 1; i < len(msgs); i++ {
		for j := i; j > 0 && msgs[j].Seq < msgs[j-1].Seq; j-- {
			msgs[j], msgs[j-1] = msgs[j-1], msgs[j]
		}
	}
}

// ReadMarkers are the last message a specialist has read in each channel (by channel as they
// name it).
type ReadMarkers map[string]uint64

func readKey(orgID, specialistID string) string { return orgID + "." + specialistID }

// Markers reads a specialist's read markers.
func (c *TeamChat) Markers(ctx context.Context, orgID, specialistID string) (ReadMarkers, error) {
	if !ValidID(orgID) || !ValidID(specialistID) {
		return nil, ErrNotFound
	}
	m, _, err := getJSON[ReadMarkers](ctx, c.reads, readKey(orgID, specialistID))
	if errors.Is(err, ErrNotFound) {
		return ReadMarkers{}, nil
	}
	if err != nil {
		return nil, err
	}
	return *m, nil
}

// MarkRead moves a specialist's marker in a channel forward to seq (never back).
func (c *TeamChat) MarkRead(ctx context.Context, orgID, specialistID, channel string, seq uint64) (ReadMarkers, error) {
	if !ValidID(orgID) || !ValidID(specialistID) || (channel != TeamChannel && !ValidID(channel)) {
		return nil, ErrNotFound
	}
	key := readKey(orgID, specialistID)
	for range maxCASAttempts {
		m, rev, err := getJSON[ReadMarkers](ctx, c.reads, key)
		if errors.Is(err, ErrNotFound) {
			m, rev, err = &ReadMarkers{}, 0, nil
		}
		if err != nil {
			return nil, err
		}
		if (*m)[channel] >= seq {
			return *m, nil
		}
		(*m)[channel] = seq
		data, _ := json.Marshal(m)
		if rev == 0 {
			_, err = c.reads.Create(ctx, key, data)
		} else {
			_, err = c.reads.Update(ctx, key, data, rev)
		}
		if err == nil {
			return *m, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !isWrongSequence(err) {
			return nil, err
		}
	}
	return nil, ErrConflict
}

// Unread counts, per channel, the messages of others after the specialist's markers.
func Unread(msgs []TeamMessage, specialistID string, markers ReadMarkers) map[string]int {
	out := map[string]int{}
	for i := range msgs {
		m := &msgs[i]
		if m.From == specialistID {
			continue
		}
		ch := m.ChannelFor(specialistID)
		if m.Seq > markers[ch] {
			out[ch]++
		}
	}
	return out
}
