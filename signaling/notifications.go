package signaling

import (
	"context"
	"fmt"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/notify"
)

// Appointment notifications: on booking, rescheduling and cancelling, the customer gets the
// link by email and/or SMS, in their language, through the durable queue in rooms/notify.

func (s *Server) openNotifier(ctx context.Context) error {
	email, sms, err := s.notifyProviders()
	if err != nil {
		return err
	}
	templates, err := notify.OpenTemplates(ctx, s.bus.JS, s.bus.Replicas, s.log.With("component", "notify"))
	if err != nil {
		return fmt.Errorf("notification templates: %w", err)
	}
	s.templates = templates
	s.notifier, err = notify.New(ctx, s.bus.JS, notify.Config{
		Providers: notify.StaticProviders(email, sms, s.cfg.EmailFrom),
		Templates: templates,
		Logger:    s.log.With("component", "notify"),
		Replicas:  s.bus.Replicas,
	})
	return err
}

// notifyProviders builds the configured email and SMS senders; nil ones make notifications on
// that channel fail with a clear reason on the appointment.
func (s *Server) notifyProviders() (notify.EmailSender, notify.SMSSender, error) {
	var email notify.EmailSender
	var sms notify.SMSSender
	if s.cfg.SMTPHost != "" {
		sender, err := notify.NewSMTPSender(notify.SMTPConfig{Host: s.cfg.SMTPHost, Port: s.cfg.SMTPPort,
			Username: s.cfg.SMTPUsername, Password: s.cfg.SMTPPassword, From: s.cfg.EmailFrom,
			StartTLS: notify.StartTLSMode(s.cfg.SMTPStartTLS)})
		if err != nil {
			return nil, nil, fmt.Errorf("smtp: %w", err)
		}
		email = sender
	}
	switch s.cfg.SMSProvider {
	case "twilio":
		sender, err := notify.NewTwilioSender(notify.TwilioConfig{BaseURL: s.cfg.SMSURL, AccountSID: s.cfg.SMSAccount,
			AuthToken: s.cfg.SMSToken, From: s.cfg.SMSFrom})
		if err != nil {
			return nil, nil, fmt.Errorf("sms: %w", err)
		}
		sms = sender
	case "webhook":
		sender, err := notify.NewWebhookSender(notify.WebhookConfig{URL: s.cfg.SMSURL, Secret: []byte(s.cfg.SMSSecret)})
		if err != nil {
			return nil, nil, fmt.Errorf("sms: %w", err)
		}
		sms = sender
	}
	return email, sms, nil
}

// notifyCustomer queues the appointment's notification of a kind on every channel the customer
// can be reached on. Message ids make a retried request send nothing twice.
func (s *Server) notifyCustomer(ctx context.Context, a *rooms.Appointment, kind notify.Kind, link string) {
	org, err := s.rooms.Organization(ctx, a.OrgID)
	orgName := "Assist"
	if err == nil {
		orgName = org.Name
	}
	data := notify.TemplateData{CustomerName: a.Customer.Name, OrganizationName: orgName, Link: link,
		Start: a.Start, End: a.End, TimeZone: "UTC"}
	for _, ch := range []struct {
		channel notify.Channel
		to      string
	}{{notify.ChannelEmail, a.Customer.Email}, {notify.ChannelSMS, a.Customer.Phone}} {
		if ch.to == "" {
			continue
		}
		msg := notify.Message{ID: fmt.Sprintf("%s.%s.%s.%d", a.ID, kind, ch.channel, a.Revision), OrgID: a.OrgID,
			AppointmentID: a.ID, Channel: ch.channel, Kind: kind, To: ch.to, Language: a.Customer.Language, Data: data}
		if err := s.notifier.Enqueue(ctx, msg); err != nil {
			s.log.Error("queue notification", "appointment", a.ID, "channel", ch.channel, "err", err)
		}
	}
}
