package signaling

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/notify"
)

// Sending an outside expert their invitation. When the invitation names an email address or a
// phone number, the one-off link goes there through the durable notifier (rooms/notify), as
// the "invitation" kind, in the language asked for (English by default). The delivery states
// are the notifier's, under the invitation's id, and show on the invitation like a call-back's.
//
// Exactly once: the message ids are {invitation id}.invitation.{channel}; an invitation is
// created once and its link never changes, so there is nothing to send twice, and the
// notifier drops a second enqueue of the same id. A message not sent by the time the
// invitation expires is dropped (Expires), and one still queued when the invitation is revoked
// is skipped (expertInvitationStillWanted).

// sendExpertInvitation queues the expert's link on every channel the invitation names.
func (s *Server) sendExpertInvitation(ctx context.Context, inv *rooms.Invitation, link, language string) error {
	orgName := "Assist"
	if org, err := s.rooms.Organization(ctx, inv.OrgID); err == nil {
		orgName = org.Name
	}
	data := notify.TemplateData{CustomerName: inv.Name, OrganizationName: orgName, Link: link,
		Start: inv.CreatedAt, End: inv.ExpiresAt, TimeZone: "UTC", InvitedBy: inv.InvitedByName}
	var errs []error
	for _, ch := range []struct {
		channel notify.Channel
		to      string
	}{{notify.ChannelEmail, inv.Email}, {notify.ChannelSMS, inv.Phone}} {
		if ch.to == "" {
			continue
		}
		msg := notify.Message{ID: inv.ID + "." + string(notify.KindInvitation) + "." + string(ch.channel), OrgID: inv.OrgID,
			AppointmentID: inv.ID, Channel: ch.channel, Kind: notify.KindInvitation, To: ch.to, Language: language,
			Data: data, Expires: inv.ExpiresAt}
		if err := s.notifier.Enqueue(ctx, msg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ch.channel, err))
		}
	}
	return errors.Join(errs...)
}

// invitationNotifications fills in where an expert's link was sent; nothing for invitations
// that name no address.
func (s *Server) invitationNotifications(ctx context.Context, inv *rooms.Invitation, v *invitationView) error {
	if inv.Kind != rooms.InviteExpert || (inv.Email == "" && inv.Phone == "") {
		return nil
	}
	statuses, err := s.notifier.Statuses(ctx, inv.ID)
	if err != nil {
		return err
	}
	v.Notifications = make([]notificationView, 0, len(statuses))
	for _, st := range statuses {
		v.Notifications = append(v.Notifications, notificationView{Channel: string(st.Channel), To: st.To,
			State: string(st.State), Attempts: st.Attempts, LastError: st.LastError, UpdatedAt: st.UpdatedAt})
	}
	return nil
}

// expertInvitationStillWanted skips an invitation whose link is no longer honoured (revoked,
// expired or gone) by the time its turn comes.
func (s *Server) expertInvitationStillWanted(ctx context.Context, m notify.Message) (string, error) {
	_, token, ok := strings.Cut(m.Data.Link, "/e/")
	if !ok {
		return "", nil
	}
	claims, err := s.issuer.VerifyLink(token)
	if err != nil {
		return "the invitation's link is no longer valid", nil
	}
	_, err = s.rooms.CheckExpertLink(ctx, claims.Org, claims.Subject, claims.ID)
	switch {
	case errors.Is(err, rooms.ErrInvitationRevoked), errors.Is(err, rooms.ErrInvitationExpired):
		return err.Error(), nil
	case errors.Is(err, rooms.ErrNotFound):
		return "the invitation no longer exists", nil
	}
	return "", err
}

// expertLanguage checks the language an invitation is sent in: "" (English) or a tag.
func expertLanguage(lang string) (string, bool) {
	lang = strings.ToLower(strings.TrimSpace(lang))
	return lang, lang == "" || languagePattern.MatchString(lang)
}
