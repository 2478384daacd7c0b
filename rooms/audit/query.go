package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
	fetchBatch      = 256
)

// Filter selects entries of one organisation. Zero fields do not filter.
type Filter struct {
	OrgID     string    // required
	From      time.Time // entries at or after
	To        time.Time // entries before
	Action    string
	ActorID   string
	SessionID string
	Limit     int    // entries per page: default 100, at most 1000
	After     string // the Next of the previous page
}

// Page is entries in the order they were logged, and the cursor to the rest.
type Page struct {
	Events []Event `json:"events"`
	// Next is the cursor for the following page; empty when there is none. A page can hold
	// fewer entries than the limit (even none) and still have a Next: one Query reads a
	// bounded number of entries, and a filter may match few of them.
	Next string `json:"next,omitempty"`
}

func (f *Filter) check() (after uint64, err error) {
	switch {
	case !validOrgID(f.OrgID):
		return 0, fmt.Errorf("%w: organisation id %q", ErrInvalidFilter, f.OrgID)
	case f.Action != "" && !validAction(f.Action):
		return 0, fmt.Errorf("%w: action %q", ErrInvalidFilter, f.Action)
	case f.Limit < 0:
		return 0, fmt.Errorf("%w: negative limit", ErrInvalidFilter)
	case !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To):
		return 0, fmt.Errorf("%w: from must be before to", ErrInvalidFilter)
	}
	if f.After != "" {
		after, err = strconv.ParseUint(f.After, 10, 64)
		if err != nil || after == 0 {
			return 0, fmt.Errorf("%w: bad cursor %q", ErrInvalidFilter, f.After)
		}
	}
	return after, nil
}

func (f *Filter) matches(ev *Event) bool {
	return ev.OrgID == f.OrgID &&
		(f.Action == "" || ev.Action == f.Action) &&
		(f.ActorID == "" || ev.Actor.ID == f.ActorID) &&
		(f.SessionID == "" || ev.SessionID == f.SessionID) &&
		(f.From.IsZero() || !ev.Time.Before(f.From)) &&
		(f.To.IsZero() || ev.Time.Before(f.To))
}

// Query returns a page of the organisation's entries that match the filter.
//
// It reads with a short-lived consumer filtered on the organisation's subjects (and the
// action's, when given), starting at the cursor, or at From by the stream's time index, so it
// reads neither other organisations' entries nor entries before the range. An entry's Time is
// within Config.MaxClockSkew of when it was stored, which bounds where reading starts and
// stops. At most a fixed number of entries is read per call.
func (t *Trail) Query(ctx context.Context, f Filter) (Page, error) {
	after, err := f.check()
	if err != nil {
		return Page{}, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)

	subject := subjectRoot + "." + f.OrgID + ".>"
	if f.Action != "" {
		subject = subjectRoot + "." + f.OrgID + "." + f.Action
	}
	cfg := jetstream.ConsumerConfig{
		FilterSubject:     subject,
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		MemoryStorage:     true,
		Replicas:          1,           // read once and deleted: not worth replicating
		InactiveThreshold: time.Minute, // cleans up after a caller that vanished mid-query
	}
	switch {
	case after > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	case !f.From.IsZero():
		start := f.From.Add(-t.skew)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	stopAfter := time.Time{} // stored later than this cannot be before To
	if !f.To.IsZero() {
		stopAfter = f.To.Add(t.skew)
	}

	cons, err := t.js.CreateConsumer(ctx, streamName, cfg)
	if err != nil {
		return Page{}, fmt.Errorf("audit: query: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = t.js.DeleteConsumer(dctx, streamName, cons.CachedInfo().Name)
	}()

	page := Page{Events: []Event{}}
	pending := cons.CachedInfo().NumPending
	var lastSeq uint64 // the last entry looked at; the next page starts after it
	scanned := 0
	for pending > 0 && len(page.Events) < limit && scanned < t.maxScan {
		batch, err := cons.Fetch(int(min(pending, fetchBatch, uint64(t.maxScan-scanned))), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return Page{}, fmt.Errorf("audit: query: %w", err)
		}
		got, done := 0, false
		for msg := range batch.Messages() {
			got++
			if done {
				continue // read past the page; the cursor brings these back
			}
			md, err := msg.Metadata()
			if err != nil {
				return Page{}, fmt.Errorf("audit: query: %w", err)
			}
			if !stopAfter.IsZero() && md.Timestamp.After(stopAfter) {
				pending, done = 0, true // past the range: nothing later can match
				continue
			}
			lastSeq, pending = md.Sequence.Stream, md.NumPending
			scanned++
			var ev Event
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				t.log.Error("unreadable audit entry", "seq", lastSeq, "err", err)
			} else if f.matches(&ev) {
				page.Events = append(page.Events, ev)
			}
			done = len(page.Events) >= limit || scanned >= t.maxScan
		}
		if err := batch.Error(); err != nil {
			return Page{}, fmt.Errorf("audit: query: %w", err)
		}
		if got == 0 {
			break // they went (by age) since the consumer counted them
		}
	}
	if pending > 0 && lastSeq > 0 {
		page.Next = strconv.FormatUint(lastSeq, 10)
	}
	return page, nil
}
