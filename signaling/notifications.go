package signaling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/notify"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/problem"
)

// Appointment notifications: on booking, rescheduling and cancelling, and as a reminder
// reminder-lead before the start, the customer gets the link by email and/or SMS, in their
// language, through the durable queue in rooms/notify.

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
	settings, err := notify.OpenSettings(ctx, s.bus.JS, s.bus.Replicas)
	if err != nil {
		return fmt.Errorf("notification settings: %w", err)
	}
	settings.AllowPrivate = s.cfg.WebhookAllowPrivate // the same trust as webhook targets
	s.notifier, err = notify.New(ctx, s.bus.JS, notify.Config{
		Providers:   notify.StaticProviders(email, sms, s.cfg.EmailFrom),
		Settings:    settings,
		Templates:   templates,
		Logger:      s.log, // notify adds component=notify
		Replicas:    s.bus.Replicas,
		StillWanted: s.notificationStillWanted,
	})
	return err
}

// notificationStillWanted keeps a reminder from going out late for an appointment that was
// cancelled or moved after it was queued (say, while the provider was failing): the new time
// gets a reminder of its own.
func (s *Server) notificationStillWanted(ctx context.Context, m notify.Message) (string, error) {
	if m.Kind == notify.KindInvitation {
		return s.expertInvitationStillWanted(ctx, m)
	}
	if m.Kind != notify.KindReminder {
		return "", nil
	}
	a, err := s.rooms.Appointment(ctx, m.OrgID, m.AppointmentID)
	switch {
	case errors.Is(err, rooms.ErrNotFound):
		return "the appointment no longer exists", nil
	case err != nil:
		return "", err
	case a.State != rooms.AppointmentBooked:
		return "the appointment is " + a.State, nil
	case !a.Start.Equal(m.Data.Start):
		return "the appointment has moved; the new time has its own reminder", nil
	}
	return "", nil
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
// can be reached on; failures are logged (the appointment shows what was queued).
func (s *Server) notifyCustomer(ctx context.Context, a *rooms.Appointment, kind notify.Kind, link string) {
	if err := s.queueNotifications(ctx, a, kind, link, time.Time{}); err != nil {
		s.log.Error("queue notification", "appointment", a.ID, "kind", kind, "err", err)
	}
}

// queueNotifications queues the appointment's notification of a kind on every channel the
// customer can be reached on. Message ids ({appointment}.{kind}.{channel}.{revision}) make a
// retry, or another node doing the same, send nothing twice.
func (s *Server) queueNotifications(ctx context.Context, a *rooms.Appointment, kind notify.Kind, link string, expires time.Time) error {
	org, err := s.rooms.Organization(ctx, a.OrgID)
	orgName := "Assist"
	if err == nil {
		orgName = org.Name
	}
	data := notify.TemplateData{CustomerName: a.Customer.Name, OrganizationName: orgName, Link: link,
		Start: a.Start, End: a.End, TimeZone: "UTC"}
	var errs []error
	for _, ch := range []struct {
		channel notify.Channel
		to      string
	}{{notify.ChannelEmail, a.Customer.Email}, {notify.ChannelSMS, a.Customer.Phone}} {
		if ch.to == "" {
			continue
		}
		msg := notify.Message{ID: fmt.Sprintf("%s.%s.%s.%d", a.ID, kind, ch.channel, a.Revision), OrgID: a.OrgID,
			AppointmentID: a.ID, Channel: ch.channel, Kind: kind, To: ch.to, Language: a.Customer.Language, Data: data,
			Expires: expires}
		if err := s.notifier.Enqueue(ctx, msg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ch.channel, err))
		}
	}
	return errors.Join(errs...)
}

// Reminders. Every node runs runReminders: it watches the appointments bucket (all of it at
// start, then each change from any node), keeps those that need a reminder, and when one is due
// (reminder-lead before the start) queues it and marks the appointment's revision as reminded.
//
// Exactly once: the reminder's message id names the appointment revision, so nodes queuing the
// same reminder at once, or a node that queued it and died before marking it, send it once
// (the notifier's de-duplication and status, see rooms/notify); the mark, a compare-and-set on
// the appointment's record, keeps a restarted node from queuing it again. A reschedule or a
// reassignment counts a new revision, which gets its own reminder; a cancelled appointment gets
// none, and a reminder queued before the change is skipped when its turn comes
// (notificationStillWanted). An appointment booked or moved inside the lead time gets none: its
// booking or rescheduling message, with the link, has just gone out. A reminder not sent by the
// end of the appointment expires; one never queued before the end is dropped.

// reminderRetry is how soon a reminder that could not be queued is tried again.
const reminderRetry = 5 * time.Second

type pendingReminder struct {
	appointment rooms.Appointment
	at          time.Time // when to (try to) queue it
}

func (s *Server) runReminders(ctx context.Context) error {
	lead := s.cfg.ReminderLead
	if lead <= 0 {
		return nil
	}
	updates, err := s.rooms.WatchAppointments(ctx)
	if err != nil {
		return fmt.Errorf("reminders: %w", err)
	}
	pending := map[string]*pendingReminder{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := time.Now().Add(time.Hour)
		for _, p := range pending {
			if p.at.Before(next) {
				next = p.at
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("reminders: the appointment watch stopped")
			}
			if u.CaughtUp {
				continue
			}
			delete(pending, u.Key)
			if u.Appointment != nil {
				if at, due := u.Appointment.ReminderDue(lead); due {
					pending[u.Key] = &pendingReminder{appointment: *u.Appointment, at: at}
				}
			}
		case <-timer.C:
			now := time.Now()
			for key, p := range pending {
				if now.Before(p.at) {
					continue
				}
				if !now.Before(p.appointment.End) {
					delete(pending, key) // over: too late to remind anyone
					continue
				}
				if err := s.queueReminder(ctx, &p.appointment); err != nil {
					s.log.Warn("reminder not queued; trying again", "appointment", p.appointment.ID, "err", err)
					p.at = now.Add(reminderRetry)
					continue
				}
				delete(pending, key)
			}
		}
	}
}

// queueReminder queues the reminder of the appointment's revision, with a fresh customer link,
// and marks it reminded.
func (s *Server) queueReminder(ctx context.Context, a *rooms.Appointment) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sess, err := s.rooms.Session(ctx, a.OrgID, a.SessionID)
	if err != nil {
		return err
	}
	link, err := s.link(sess, auth.RoleCustomer)
	if err != nil {
		return err
	}
	if err := s.queueNotifications(ctx, a, notify.KindReminder, link, a.End); err != nil {
		return err
	}
	_, err = s.rooms.MarkReminded(ctx, a.OrgID, a.ID, a.Revision)
	return err
}

// Per-organisation providers: GET, PUT and DELETE /v1/notification-settings, for API keys
// only (the admin scope). Secrets (smtp_password, token, secret) are write-only: answers show
// "********" for a secret that is set, and a PUT that leaves one empty keeps the stored one.

// notificationSettings is the resource; a null channel uses the node's configured provider.
type notificationSettings struct {
	Email     *notify.EmailSettings `json:"email"`
	SMS       *notify.SMSSettings   `json:"sms"`
	UpdatedAt *time.Time            `json:"updated_at,omitempty"`
}

func settingsView(o *notify.OrgSettings) notificationSettings {
	if o == nil {
		return notificationSettings{}
	}
	r := o.Redacted()
	return notificationSettings{Email: r.Email, SMS: r.SMS, UpdatedAt: &r.UpdatedAt}
}

// settingsCaller answers 403 unless the caller is an API key.
func (s *Server) handleGetNotificationSettings(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	o, err := s.notifier.Settings().Get(r.Context(), c.OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, settingsView(o))
}

func (s *Server) handlePutNotificationSettings(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	var in notificationSettings
	if !readJSON(w, r, &in) {
		return
	}
	o, err := s.notifier.Settings().Put(r.Context(), c.OrgID, notify.OrgSettings{Email: in.Email, SMS: in.SMS})
	if errors.Is(err, notify.ErrInvalidSettings) {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-settings", strings.TrimPrefix(err.Error(), notify.ErrInvalidSettings.Error()+": "))
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSettingsChange, "", "notification settings"))
	writeJSON(w, http.StatusOK, settingsView(o))
}

func (s *Server) handleDeleteNotificationSettings(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if err := s.notifier.Settings().Delete(r.Context(), c.OrgID); err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSettingsChange, "", "notification settings deleted"))
	w.WriteHeader(http.StatusNoContent)
}
