// Package notify sends notifications by email and SMS, durably: appointments' to customers, and
// the links of call-backs (to customers who left a video message) and of expert invitations.
//
// A notification is a Message. Enqueue validates it, records it as "queued" in the KV bucket
// assist_notify_status and publishes it to the JetStream work queue ASSIST_NOTIFY, de-duplicated
// by Message.ID. Notifier.Run, on any number of nodes, takes messages from the durable pull
// consumer assist_notify_sender, renders them with the organisation's Templates and hands them to
// the organisation's EmailSender or SMSSender. Retryable failures come back after a backoff;
// permanent failures, and messages that run out of attempts, end as "failed" with the reason;
// messages that Config.StillWanted says are no longer wanted (a reminder for an appointment
// cancelled or moved meanwhile) end as "skipped" with the reason.
//
// Providers are the node's (Config.Providers) unless an organisation has set its own in
// Settings (KV bucket assist_notify_settings), channel by channel.
//
// # Exactly once, and the window that remains
//
// A message is sent at most once per Message.ID in all but one case. Before sending, a node
// claims the message in the status bucket with a compare-and-set that also sets a lease
// (State "sending", LeaseUntil); another delivery of the same ID (a redelivery, or a second
// publish after the stream's de-duplication window) that sees "sent" acks without sending, and
// one that sees a live lease waits for it to end. After a successful send the node writes "sent"
// before it acks, so a crash or a lost connection between the send and the ack does not resend.
//
// The remaining window: if the node dies, or loses NATS for good, after the provider accepted the
// message but before "sent" is stored, the message is sent again once the lease has run out.
// Neither SMTP nor the SMS APIs let us make the provider's accept and our write one step. For
// email, the Message-ID header is the notification ID so the receiving side can drop the copy;
// the webhook adapter sends the ID in its body and in an Idempotency-Key header for the same
// reason.
package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Errors of the notify package.
var (
	// ErrInvalidMessage wraps every reason Enqueue refuses a message.
	ErrInvalidMessage = errors.New("notify: invalid message")
	// ErrInvalidTemplate wraps every reason SetOrgTemplate refuses a template.
	ErrInvalidTemplate = errors.New("notify: invalid template")
	// ErrNoProvider means the organisation has no sender configured for the message's channel.
	ErrNoProvider = errors.New("notify: no provider configured for this channel")
)

// Channel is how a notification reaches the customer.
type Channel string

// Channels.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
)

// Channels lists every channel.
func Channels() []Channel { return []Channel{ChannelEmail, ChannelSMS} }

func (c Channel) valid() bool { return c == ChannelEmail || c == ChannelSMS }

// Kind is what happened to the appointment, or why else someone gets a link.
type Kind string

// Kinds.
const (
	KindBooked      Kind = "booked"
	KindRescheduled Kind = "rescheduled"
	KindCancelled   Kind = "cancelled"
	KindReminder    Kind = "reminder"
	// KindCallBack: a customer who left a video message is called back; the link is to a new
	// session, valid until Data.End.
	KindCallBack Kind = "callback"
	// KindInvitation: an outside expert is invited into a live session (by Data.InvitedBy of
	// Data.OrganizationName); the link is theirs alone, valid until Data.End.
	KindInvitation Kind = "invitation"
)

// Kinds lists every kind.
func Kinds() []Kind {
	return []Kind{KindBooked, KindRescheduled, KindCancelled, KindReminder, KindCallBack, KindInvitation}
}

func (k Kind) valid() bool {
	switch k {
	case KindBooked, KindRescheduled, KindCancelled, KindReminder, KindCallBack, KindInvitation:
		return true
	}
	return false
}

// Message is one notification to one customer on one channel.
type Message struct {
	// ID makes the notification idempotent: the same ID is sent once. Build it from what makes the
	// notification unique, for example appointment id, kind, channel and appointment revision
	// ("apt_123.booked.email.3"). Letters, digits, '_', '-', '=', '+' and inner dots; at most 200.
	ID            string       `json:"id"`
	OrgID         string       `json:"org_id"`
	AppointmentID string       `json:"appointment_id"`
	Channel       Channel      `json:"channel"`
	Kind          Kind         `json:"kind"`
	To            string       `json:"to"`       // an email address, or an E.164 phone number for SMS
	Language      string       `json:"language"` // BCP 47 ("en", "fr-CA"); empty means English
	Data          TemplateData `json:"data"`
	// Expires, when set, is the moment after which sending is pointless (a reminder for an
	// appointment that has started); the message then fails instead of being sent late.
	Expires time.Time `json:"expires,omitzero"`
}

// TemplateData is what the templates may show.
type TemplateData struct {
	CustomerName     string    `json:"customer_name"`
	OrganizationName string    `json:"organization_name"`
	Link             string    `json:"link"` // the customer's link to the call (or to rebook)
	Start            time.Time `json:"start"`
	End              time.Time `json:"end"`
	TimeZone         string    `json:"time_zone"` // IANA name ("Europe/Paris"); empty means UTC
	// InvitedBy names who invites an expert (KindInvitation); empty when not known.
	InvitedBy string `json:"invited_by,omitempty"`
}

// State is where a notification is in its delivery.
type State string

// Delivery states.
const (
	StateQueued  State = "queued"  // waiting to be sent, or to be retried
	StateSending State = "sending" // a node holds it (until LeaseUntil) and is sending it
	StateSent    State = "sent"
	StateFailed  State = "failed" // permanently, or out of attempts; LastError says why
	// StateSkipped: not sent because it was no longer wanted (Config.StillWanted); LastError says
	// why. A reminder for an appointment cancelled or moved before it went out ends here.
	StateSkipped State = "skipped"
)

// Status is the delivery state of one notification, as the API shows it.
type Status struct {
	ID            string    `json:"id"`
	OrgID         string    `json:"org_id"`
	AppointmentID string    `json:"appointment_id"`
	Channel       Channel   `json:"channel"`
	Kind          Kind      `json:"kind"`
	To            string    `json:"to"`
	State         State     `json:"state"`
	Attempts      int       `json:"attempts"`
	LastError     string    `json:"last_error,omitempty"`
	UpdatedAt     time.Time `json:"updated_at"`
	SentAt        time.Time `json:"sent_at,omitzero"`
	LeaseUntil    time.Time `json:"lease_until,omitzero"`
}

// Permanent marks err as a failure that retrying will not fix (a refused address, a bad
// request): the notification then fails at once. Errors not marked are retried.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// retryAfterError is a retryable failure whose provider said when to come back.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// retryAfter is how long the provider asked us to wait, if it did.
func retryAfter(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

var (
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	idRe    = regexp.MustCompile(`^[A-Za-z0-9_=+-]+(\.[A-Za-z0-9_=+-]+)*$`)
	e164Re  = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	langRe  = regexp.MustCompile(`^[a-z]{2,3}(-[a-z0-9]{2,8})*$`)
)

// validToken reports whether s can be an org or appointment id here: safe as a KV key token and
// a subject token.
func validToken(s string) bool { return tokenRe.MatchString(s) }

func validMessageID(s string) bool { return len(s) <= 200 && idRe.MatchString(s) }

// normalizeLanguage lower-cases a BCP 47 tag and turns '_' into '-'; "" stays "".
func normalizeLanguage(lang string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(lang)), "_", "-")
}

// Validate reports what is wrong with m, wrapping ErrInvalidMessage.
func (m *Message) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidMessage, fmt.Sprintf(format, args...))
	}
	switch {
	case !validMessageID(m.ID):
		return bad("id %q: use letters, digits, '_', '-', '=', '+' and inner dots, at most 200", m.ID)
	case !validToken(m.OrgID):
		return bad("org id %q", m.OrgID)
	case !validToken(m.AppointmentID):
		return bad("appointment id %q", m.AppointmentID)
	case !m.Channel.valid():
		return bad("channel %q", m.Channel)
	case !m.Kind.valid():
		return bad("kind %q", m.Kind)
	case m.Language != "" && !langRe.MatchString(normalizeLanguage(m.Language)):
		return bad("language %q is not a BCP 47 tag", m.Language)
	case m.Data.Start.IsZero():
		return bad("the appointment start is missing")
	case !m.Data.End.IsZero() && m.Data.End.Before(m.Data.Start):
		return bad("the appointment ends before it starts")
	}
	switch m.Channel {
	case ChannelEmail:
		addr, err := mail.ParseAddress(m.To)
		if err != nil || addr.Address != m.To {
			return bad("to %q is not a plain email address", m.To)
		}
	case ChannelSMS:
		if !e164Re.MatchString(m.To) {
			return bad("to %q is not an E.164 phone number (+ and 7 to 15 digits)", m.To)
		}
	}
	if m.Data.TimeZone != "" {
		if _, err := time.LoadLocation(m.Data.TimeZone); err != nil {
			return bad("time zone %q: %v", m.Data.TimeZone, err)
		}
	}
	if m.Data.Link != "" {
		u, err := url.Parse(m.Data.Link)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("link %q is not an absolute http(s) URL", m.Data.Link)
		}
	}
	return nil
}
