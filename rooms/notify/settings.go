package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketSettings holds each organisation's own providers (key: the organisation id). An
// organisation without settings for a channel uses the node's (Settings.Resolver's fallback).
const BucketSettings = "assist_notify_settings"

// ErrInvalidSettings wraps every reason Settings.Put refuses an organisation's settings.
var ErrInvalidSettings = errors.New("notify: invalid provider settings")

// OrgSettings are an organisation's own providers. A nil channel falls back to the node's.
type OrgSettings struct {
	Email     *EmailSettings `json:"email,omitempty"`
	SMS       *SMSSettings   `json:"sms,omitempty"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// EmailSettings are an organisation's sender address and, optionally, its own SMTP server.
// Without SMTPHost the node's SMTP server sends, with this From address.
type EmailSettings struct {
	From     string       `json:"from"`
	SMTPHost string       `json:"smtp_host,omitempty"`
	SMTPPort int          `json:"smtp_port,omitempty"`
	Username string       `json:"smtp_username,omitempty"`
	Password string       `json:"smtp_password,omitempty"` // write-only: see Redacted
	StartTLS StartTLSMode `json:"smtp_starttls,omitempty"`
}

// SMSSettings are an organisation's SMS provider: "twilio" (URL optional, AccountSID, AuthToken,
// From) or "webhook" (URL, Secret).
type SMSSettings struct {
	Provider   string `json:"provider"`
	URL        string `json:"url,omitempty"`
	AccountSID string `json:"account,omitempty"`
	AuthToken  string `json:"token,omitempty"` // write-only
	From       string `json:"from,omitempty"`
	Secret     string `json:"secret,omitempty"` // write-only
}

// Redacted is o without its secrets, for showing: each secret becomes "********" when set.
func (o OrgSettings) Redacted() OrgSettings {
	hide := func(s string) string {
		if s == "" {
			return ""
		}
		return "********"
	}
	if o.Email != nil {
		e := *o.Email
		e.Password = hide(e.Password)
		o.Email = &e
	}
	if o.SMS != nil {
		s := *o.SMS
		s.AuthToken, s.Secret = hide(s.AuthToken), hide(s.Secret)
		o.SMS = &s
	}
	return o
}

// Settings stores organisations' provider settings in JetStream KV, shared by every node.
type Settings struct {
	kv jetstream.KeyValue
	// AllowPrivate lets organisations point at loopback and private addresses (tests, closed
	// networks). Otherwise such hosts are refused, so an organisation cannot make the node
	// connect to the node's own network.
	AllowPrivate bool
}

// OpenSettings creates the bucket if it is missing.
func OpenSettings(ctx context.Context, js jetstream.JetStream, replicas int) (*Settings, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketSettings,
		Description: "Assist: organisations' email and SMS providers",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("notify: bucket %s: %w", BucketSettings, err)
	}
	return &Settings{kv: kv}, nil
}

// Get returns the organisation's settings, secrets included; nil when it has none.
func (s *Settings) Get(ctx context.Context, orgID string) (*OrgSettings, error) {
	if !validToken(orgID) {
		return nil, fmt.Errorf("%w: org id %q", ErrInvalidSettings, orgID)
	}
	e, err := s.kv.Get(ctx, orgID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var o OrgSettings
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return nil, fmt.Errorf("notify: corrupt settings of %s: %w", orgID, err)
	}
	return &o, nil
}

// Put replaces the organisation's settings after checking them. A secret left empty keeps the
// stored one if it would go to the same place (the same SMTP host and user, the same SMS provider
// and URL), so changing the From address need not resend the password; a secret is never handed
// to a new host that way.
func (s *Settings) Put(ctx context.Context, orgID string, o OrgSettings) (*OrgSettings, error) {
	cur, err := s.Get(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if cur != nil && o.Email != nil && cur.Email != nil && o.Email.Password == "" &&
		o.Email.SMTPHost == cur.Email.SMTPHost && o.Email.Username == cur.Email.Username {
		o.Email.Password = cur.Email.Password
	}
	if cur != nil && o.SMS != nil && cur.SMS != nil && o.SMS.Provider == cur.SMS.Provider && o.SMS.URL == cur.SMS.URL {
		if o.SMS.AuthToken == "" {
			o.SMS.AuthToken = cur.SMS.AuthToken
		}
		if o.SMS.Secret == "" {
			o.SMS.Secret = cur.SMS.Secret
		}
	}
	if _, _, err := s.senders(ctx, &o, true); err != nil {
		return nil, err
	}
	o.UpdatedAt = time.Now().UTC()
	data, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	if _, err := s.kv.Put(ctx, orgID, data); err != nil {
		return nil, err
	}
	return &o, nil
}

// Delete removes the organisation's settings: it falls back to the node's providers.
func (s *Settings) Delete(ctx context.Context, orgID string) error {
	if !validToken(orgID) {
		return fmt.Errorf("%w: org id %q", ErrInvalidSettings, orgID)
	}
	err := s.kv.Delete(ctx, orgID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// Resolver resolves an organisation to its own providers, channel by channel, and to fallback's
// for a channel it has not set (an email setting without an SMTP host uses fallback's sender
// with the organisation's From address).
func (s *Settings) Resolver(fallback ProviderResolver) ProviderResolver {
	return func(ctx context.Context, orgID string) (EmailSender, SMSSender, string, error) {
		email, sms, from, err := fallback(ctx, orgID)
		if err != nil {
			return nil, nil, "", err
		}
		o, err := s.Get(ctx, orgID)
		if err != nil || o == nil {
			return email, sms, from, err
		}
		ownEmail, ownSMS, err := s.senders(ctx, o, false)
		if err != nil {
			// Stored settings that no longer check out: retrying will not help until they change.
			return nil, nil, "", Permanent(err)
		}
		if o.Email != nil {
			from = o.Email.From
			if ownEmail != nil {
				email = ownEmail
			}
		}
		if o.SMS != nil {
			sms = ownSMS
		}
		return email, sms, from, nil
	}
}

// senders builds the organisation's own senders (nil where it uses the node's), checking the
// settings; checkHosts also refuses private hosts unless AllowPrivate.
func (s *Settings) senders(ctx context.Context, o *OrgSettings, checkHosts bool) (EmailSender, SMSSender, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSettings, fmt.Sprintf(format, args...))
	}
	var email EmailSender
	var sms SMSSender
	if e := o.Email; e != nil {
		if a, err := mail.ParseAddress(e.From); err != nil || a.Address == "" {
			return nil, nil, bad("email.from %q is not an email address", e.From)
		}
		if e.SMTPHost != "" {
			if checkHosts {
				if err := s.checkHost(ctx, e.SMTPHost); err != nil {
					return nil, nil, bad("email.smtp_host: %v", err)
				}
			}
			sender, err := NewSMTPSender(SMTPConfig{Host: e.SMTPHost, Port: e.SMTPPort, Username: e.Username,
				Password: e.Password, From: e.From, StartTLS: e.StartTLS})
			if err != nil {
				return nil, nil, bad("email: %v", err)
			}
			email = sender
		} else if e.Username != "" || e.Password != "" || e.SMTPPort != 0 {
			return nil, nil, bad("email: smtp settings without smtp_host")
		}
	}
	if m := o.SMS; m != nil {
		if checkHosts && m.URL != "" {
			u, err := url.Parse(m.URL)
			if err != nil {
				return nil, nil, bad("sms.url %q", m.URL)
			}
			if err := s.checkHost(ctx, u.Hostname()); err != nil {
				return nil, nil, bad("sms.url: %v", err)
			}
		}
		var err error
		switch m.Provider {
		case "twilio":
			sms, err = NewTwilioSender(TwilioConfig{BaseURL: m.URL, AccountSID: m.AccountSID, AuthToken: m.AuthToken, From: m.From})
		case "webhook":
			sms, err = NewWebhookSender(WebhookConfig{URL: m.URL, Secret: []byte(m.Secret)})
		default:
			return nil, nil, bad("sms.provider %q: twilio or webhook", m.Provider)
		}
		if err != nil {
			return nil, nil, bad("sms: %v", err)
		}
	}
	return email, sms, nil
}

// checkHost refuses hosts that are, or resolve to, loopback, private, link-local or unspecified
// addresses, unless AllowPrivate.
func (s *Settings) checkHost(ctx context.Context, host string) error {
	if host == "" {
		return errors.New("no host")
	}
	if s.AllowPrivate {
		return nil
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return fmt.Errorf("%s does not resolve: %v", host, err)
		}
		addrs = ips
	}
	for _, a := range addrs {
		a = a.Unmap()
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("%s is a local or private address", host)
		}
	}
	return nil
}
