package signaling

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/notify"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// Video messages ("voicemail"). A customer nobody could take, because the queue timed out
// or the organisation is closed, records a short message in the browser (MediaRecorder) and
// uploads it with the session link. It is checked by its content, stored under the session in
// object storage only once it has fully arrived, recorded (rooms.VideoMessage), announced by
// webhook and audited. Specialists find it in the console's inbox and through the API, play
// it through a signed download URL, mark it handled, delete it, and call the customer back: a
// new session whose link goes out by email and SMS.

// Limits of a video message.
const (
	maxVideoMessageSize     = 40 << 20 // a 2-minute 720p MediaRecorder message is about 15-30 MiB
	maxVideoMessageDuration = 2 * time.Minute
	maxVideoMessagesPerLink = 3
)

// Audit actions of video messages.
const (
	actionVideoMessageReceive  = "video_message.receive"
	actionVideoMessageHandle   = "video_message.handle"
	actionVideoMessageDelete   = "video_message.delete"
	actionVideoMessageCallBack = "video_message.call_back"
)

// videoMessageTypes are the containers a browser records into, as http.DetectContentType
// sniffs them, with the type they are stored and served as.
var videoMessageTypes = map[string]struct{ contentType, ext string }{
	"video/webm":      {"video/webm", "webm"},
	"video/mp4":       {"video/mp4", "mp4"},
	"application/ogg": {"video/ogg", "ogg"},
}

// videoMessageView is a video message as the API shows it.
type videoMessageView struct {
	ID            string         `json:"id"`
	SessionID     string         `json:"session_id"`
	AppointmentID string         `json:"appointment_id,omitempty"`
	Customer      rooms.Customer `json:"customer"`
	Reason        string         `json:"reason"`
	State         string         `json:"state"`
	ContentType   string         `json:"content_type"`
	Size          int64          `json:"size"`
	DurationMS    int64          `json:"duration_ms"`
	AudioOnly     bool           `json:"audio_only"`
	CreatedAt     time.Time      `json:"created_at"`
	HandledAt     *time.Time     `json:"handled_at,omitempty"`
	HandledBy     string         `json:"handled_by,omitempty"`
	DownloadURL   string         `json:"download_url,omitempty"`
	CallBack      *callBackView  `json:"call_back,omitempty"`
}

// callBackView is the session opened to call the customer back and where its link went.
type callBackView struct {
	SessionID     string             `json:"session_id"`
	By            string             `json:"by"`
	At            time.Time          `json:"at"`
	Channels      []string           `json:"channels"`
	CustomerURL   string             `json:"customer_url,omitempty"`   // in the call-back reply only
	SpecialistURL string             `json:"specialist_url,omitempty"` // in the call-back reply only
	Notifications []notificationView `json:"notifications,omitempty"`
}

// notificationView is the delivery state of one call-back link.
type notificationView struct {
	Channel   string    `json:"channel"`
	To        string    `json:"to"`
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

type videoMessageList struct {
	Data       []videoMessageView `json:"data"`
	HasMore    bool               `json:"has_more"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

type videoMessagePatch struct {
	State *string `json:"state"`
}

type callBackRequest struct {
	// Channels to send the link on: "email", "sms"; absent means every one the customer gave.
	Channels []string `json:"channels"`
}

// viewVideoMessage is the API's picture of a message; with sign, it carries a download URL.
func (s *Server) viewVideoMessage(m *rooms.VideoMessage, sign bool) videoMessageView {
	v := videoMessageView{ID: m.ID, SessionID: m.SessionID, AppointmentID: m.AppointmentID, Customer: m.Customer,
		Reason: m.Reason, State: m.State, ContentType: m.ContentType, Size: m.Size, DurationMS: m.DurationMS,
		AudioOnly: m.AudioOnly, CreatedAt: m.CreatedAt, HandledAt: m.HandledAt, HandledBy: m.HandledBy}
	if sign {
		v.DownloadURL = s.downloadURL(m.ObjectKey)
	}
	if cb := m.CallBack; cb != nil {
		v.CallBack = &callBackView{SessionID: cb.SessionID, By: cb.By, At: cb.At, Channels: slices.Clone(cb.Channels)}
	}
	return v
}

// callBackNotifications fills in where the call-back link went.
func (s *Server) callBackNotifications(ctx context.Context, m *rooms.VideoMessage, v *videoMessageView) error {
	if v.CallBack == nil {
		return nil
	}
	statuses, err := s.notifier.Statuses(ctx, m.ID)
	if err != nil {
		return err
	}
	v.CallBack.Notifications = []notificationView{}
	for _, st := range statuses {
		v.CallBack.Notifications = append(v.CallBack.Notifications, notificationView{Channel: string(st.Channel), To: st.To,
			State: string(st.State), Attempts: st.Attempts, LastError: st.LastError, UpdatedAt: st.UpdatedAt})
	}
	return nil
}

// ---- the customer's upload ----

// messageCaller is the customer leaving a message: their link, session and participant.
type messageCaller struct {
	orgID   string
	session *rooms.Session
	me      *rooms.Participant
}

// authorizeMessage admits the customer link of this session, for a customer who came to it
// and is not in the call.
func (s *Server) authorizeMessage(r *http.Request, sessionID string) (*messageCaller, int, string, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, http.StatusUnauthorized, "unauthorized", errors.New("send the session link's token as Authorization: Bearer")
	}
	claims, err := s.issuer.VerifyLink(token)
	if err != nil {
		return nil, http.StatusUnauthorized, "unauthorized", errors.New("send the session link's token")
	}
	if claims.Subject != sessionID {
		return nil, http.StatusForbidden, "forbidden", errors.New("this link is for another session")
	}
	if claims.Role != auth.RoleCustomer {
		return nil, http.StatusForbidden, "forbidden", errors.New("video messages come from customers")
	}
	sess, err := s.rooms.Session(r.Context(), claims.Org, sessionID)
	if err != nil {
		return nil, http.StatusNotFound, "not-found", errors.New("no such session")
	}
	if err := sess.LinkOpen(claims.IssuedAt.Time, time.Now()); err != nil {
		return nil, http.StatusConflict, "invalid-state", err
	}
	for i := range sess.Participants {
		p := &sess.Participants[i]
		if p.Key != "link:"+claims.ID {
			continue
		}
		if p.InCall() || p.State == rooms.ParticipantDenied {
			return nil, http.StatusConflict, "invalid-state", errors.New("messages are for customers nobody could take")
		}
		return &messageCaller{orgID: claims.Org, session: sess, me: p}, 0, "", nil
	}
	return nil, http.StatusForbidden, "forbidden", errors.New("join the waiting room first")
}

// messageReason says why the customer may leave a message now: the organisation is closed,
// or they have waited queue-timeout; "" when neither.
func (s *Server) messageReason(org *rooms.Organization, me *rooms.Participant, now time.Time) string {
	switch {
	case !org.Policy.OpeningHours.OpenAt(now):
		return rooms.VideoMessageAfterHours
	case s.cfg.QueueTimeout > 0 && !now.Before(me.JoinedAt.Add(s.cfg.QueueTimeout)):
		return rooms.VideoMessageQueueTimeout
	}
	return ""
}

// customerFromQuery reads the details the customer typed (all optional) and checks them.
func customerFromQuery(r *http.Request) (rooms.Customer, string) {
	q := r.URL.Query()
	c := rooms.Customer{Name: strings.TrimSpace(q.Get("name")), Phone: strings.TrimSpace(q.Get("phone")),
		Email: strings.TrimSpace(q.Get("email")), Language: strings.ToLower(strings.TrimSpace(q.Get("language")))}
	c.Phone = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(c.Phone)
	switch {
	case utf8.RuneCountInString(c.Name) > 80 || strings.ContainsFunc(c.Name, func(r rune) bool { return r < ' ' }):
		return c, "name: at most 80 characters"
	case c.Phone != "" && !phonePattern.MatchString(c.Phone):
		return c, "phone: an international number, + and 7 to 15 digits"
	case c.Language != "" && !languagePattern.MatchString(c.Language):
		return c, "language: a language tag such as en or fr-ca"
	}
	if c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email || len(c.Email) > 254 {
			return c, "email: a plain email address"
		}
	}
	return c, ""
}

func (s *Server) handleUploadVideoMessage(w http.ResponseWriter, r *http.Request) {
	c, status, code, err := s.authorizeMessage(r, r.PathValue("id"))
	if err != nil {
		problem.Write(w, r, status, code, err.Error())
		return
	}
	customer, bad := customerFromQuery(r)
	if bad != "" {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", bad)
		return
	}
	q := r.URL.Query()
	duration, err := strconv.ParseInt(q.Get("duration_ms"), 10, 64)
	if err != nil || duration <= 0 || duration > maxVideoMessageDuration.Milliseconds()+2000 {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field",
			fmt.Sprintf("duration_ms: the message's length in milliseconds, at most %d", maxVideoMessageDuration.Milliseconds()))
		return
	}
	org, err := s.rooms.Organization(r.Context(), c.orgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	reason := s.messageReason(org, c.me, time.Now())
	if reason == "" {
		problem.Write(w, r, http.StatusConflict, "invalid-state", "a message can be left once nobody could take the call, or outside opening hours")
		return
	}
	earlier, _, err := s.rooms.ListVideoMessages(r.Context(), c.orgID, rooms.VideoMessageFilter{SessionID: c.session.ID, Limit: 100})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if len(earlier) >= maxVideoMessagesPerLink {
		problem.Write(w, r, http.StatusTooManyRequests, "too-many-messages",
			fmt.Sprintf("at most %d messages can be left in one session", maxVideoMessagesPerLink))
		return
	}
	data, ok := readUpload(w, r, maxVideoMessageSize)
	if !ok {
		return
	}
	kind, known := videoMessageTypes[http.DetectContentType(data)]
	if !known {
		problem.Write(w, r, http.StatusUnsupportedMediaType, "not-a-recording", "video messages are WebM, MP4 or Ogg recordings")
		return
	}
	if customer.Name == "" {
		customer.Name = c.me.Name
	}
	m := &rooms.VideoMessage{ID: rooms.NewVideoMessageID(), OrgID: c.orgID, SessionID: c.session.ID,
		AppointmentID: c.session.AppointmentID, Customer: customer, Reason: reason, ContentType: kind.contentType,
		Size: int64(len(data)), DurationMS: duration, AudioOnly: q.Get("audio_only") == "true"}
	if m.AppointmentID != "" { // what the booking knows fills what the customer did not type
		if a, err := s.rooms.Appointment(r.Context(), c.orgID, m.AppointmentID); err == nil {
			m.Customer = mergeCustomer(m.Customer, a.Customer)
		}
	}
	m.ObjectKey, err = store.ObjectKey(c.orgID, c.session.ID, store.KindFiles, m.ID+"."+kind.ext)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if _, err := s.objects.Put(r.Context(), m.ObjectKey, bytes.NewReader(data), m.Size, m.ContentType); err != nil {
		s.internalError(w, r, err)
		return
	}
	if err := s.rooms.AddVideoMessage(r.Context(), m); err != nil {
		_ = s.objects.Delete(context.WithoutCancel(r.Context()), m.ObjectKey)
		s.internalError(w, r, err)
		return
	}
	s.publishWebhook(r.Context(), c.orgID, webhooks.TypeVideoMessageReceived, m.ID, struct {
		VideoMessageID string         `json:"video_message_id"`
		SessionID      string         `json:"session_id"`
		AppointmentID  string         `json:"appointment_id,omitempty"`
		Customer       rooms.Customer `json:"customer"`
		Reason         string         `json:"reason"`
		DurationMS     int64          `json:"duration_ms"`
		Size           int64          `json:"size"`
		ContentType    string         `json:"content_type"`
	}{m.ID, m.SessionID, m.AppointmentID, m.Customer, m.Reason, m.DurationMS, m.Size, m.ContentType})
	s.record(r.Context(), audit.Event{OrgID: c.orgID, Actor: audit.Actor{Kind: audit.ActorCustomer, ID: c.me.ID, Name: c.me.Name},
		Action: actionVideoMessageReceive, SessionID: c.session.ID, Target: m.ID, RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent()})
	v := s.viewVideoMessage(m, false)
	writeJSON(w, http.StatusCreated, v)
}

// mergeCustomer keeps what the customer typed and fills the rest from the booking.
func mergeCustomer(typed, booked rooms.Customer) rooms.Customer {
	for _, f := range []struct{ dst, src *string }{{&typed.Name, &booked.Name}, {&typed.Phone, &booked.Phone},
		{&typed.Email, &booked.Email}, {&typed.Language, &booked.Language}} {
		if *f.dst == "" || (f.dst == &typed.Name && *f.dst == "Customer") {
			*f.dst = *f.src
		}
	}
	return typed
}

// ---- the organisation's side ----

func (s *Server) handleListVideoMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := rooms.VideoMessageFilter{State: q.Get("state"), SessionID: q.Get("session_id"), After: q.Get("starting_after"), Limit: 20}
	if f.State != "" && f.State != rooms.VideoMessageNew && f.State != rooms.VideoMessageHandled {
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "state is new or handled")
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "limit must be a whole number from 1 to 100")
			return
		}
		f.Limit = n
	}
	list, more, err := s.rooms.ListVideoMessages(r.Context(), callerOf(r).OrgID, f)
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "starting_after is not a message of this list")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	out := videoMessageList{Data: make([]videoMessageView, 0, len(list)), HasMore: more}
	for i := range list {
		out.Data = append(out.Data, s.viewVideoMessage(&list[i], true))
	}
	if more && len(list) > 0 {
		out.NextCursor = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// videoMessageOf reads the message of the route for the caller's organisation, answering 404.
func (s *Server) videoMessageOf(w http.ResponseWriter, r *http.Request) (*rooms.VideoMessage, bool) {
	m, err := s.rooms.VideoMessage(r.Context(), callerOf(r).OrgID, r.PathValue("id"))
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such video message")
		return nil, false
	}
	if err != nil {
		s.internalError(w, r, err)
		return nil, false
	}
	return m, true
}

func (s *Server) handleGetVideoMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.videoMessageOf(w, r)
	if !ok {
		return
	}
	v := s.viewVideoMessage(m, true)
	if err := s.callBackNotifications(r.Context(), m, &v); err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleUpdateVideoMessage(w http.ResponseWriter, r *http.Request) {
	var patch videoMessagePatch
	if !readJSON(w, r, &patch) {
		return
	}
	if patch.State == nil || (*patch.State != rooms.VideoMessageNew && *patch.State != rooms.VideoMessageHandled) {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "state: new or handled")
		return
	}
	c := callerOf(r)
	who := actorName(c)
	m, err := s.rooms.UpdateVideoMessage(r.Context(), c.OrgID, r.PathValue("id"), func(m *rooms.VideoMessage) error {
		if m.State == *patch.State {
			return nil
		}
		m.State = *patch.State
		if m.State == rooms.VideoMessageHandled {
			now := time.Now().UTC()
			m.HandledAt, m.HandledBy = &now, who
		} else {
			m.HandledAt, m.HandledBy = nil, ""
		}
		return nil
	})
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such video message")
		return
	}
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, actionVideoMessageHandle, m.SessionID, m.ID+":"+m.State))
	writeJSON(w, http.StatusOK, s.viewVideoMessage(m, true))
}

func (s *Server) handleDeleteVideoMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.videoMessageOf(w, r)
	if !ok {
		return
	}
	if err := s.objects.Delete(r.Context(), m.ObjectKey); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internalError(w, r, err)
		return
	}
	if err := s.rooms.DeleteVideoMessage(r.Context(), m.OrgID, m.ID); err != nil && !errors.Is(err, rooms.ErrNotFound) {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, actionVideoMessageDelete, m.SessionID, m.ID))
	w.WriteHeader(http.StatusNoContent)
}

// handleCallBack opens a new session for the customer who left the message and sends them its
// link on every channel they gave (or those asked for). The message is marked handled.
func (s *Server) handleCallBack(w http.ResponseWriter, r *http.Request) {
	var in callBackRequest
	if r.ContentLength != 0 && !readJSON(w, r, &in) {
		return
	}
	m, ok := s.videoMessageOf(w, r)
	if !ok {
		return
	}
	targets := map[notify.Channel]string{}
	if m.Customer.Email != "" {
		targets[notify.ChannelEmail] = m.Customer.Email
	}
	if m.Customer.Phone != "" {
		targets[notify.ChannelSMS] = m.Customer.Phone
	}
	if len(in.Channels) > 0 {
		for ch := range targets {
			if !slices.Contains(in.Channels, string(ch)) {
				delete(targets, ch)
			}
		}
		for _, ch := range in.Channels {
			if ch != string(notify.ChannelEmail) && ch != string(notify.ChannelSMS) {
				problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "channels: email and sms")
				return
			}
		}
	}
	if len(targets) == 0 {
		problem.Write(w, r, http.StatusUnprocessableEntity, "no-contact", "the customer left no email address or phone number to send a link to")
		return
	}
	c := callerOf(r)
	if m.CallBack != nil {
		problem.Write(w, r, http.StatusConflict, "invalid-state", "this customer has been called back already")
		return
	}
	sess, err := s.rooms.CreateSession(r.Context(), c.OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.metrics.sessions.Inc()
	customerURL, err := s.link(sess, auth.RoleCustomer)
	var specialistURL string
	if err == nil {
		specialistURL, err = s.link(sess, auth.RoleSpecialist)
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	channels := make([]string, 0, len(targets))
	for ch := range targets {
		channels = append(channels, string(ch))
	}
	slices.Sort(channels)
	who := actorName(c)
	updated, err := s.rooms.UpdateVideoMessage(r.Context(), c.OrgID, m.ID, func(m *rooms.VideoMessage) error {
		if m.CallBack != nil {
			return fmt.Errorf("%w: called back already", rooms.ErrConflict)
		}
		now := time.Now().UTC()
		m.CallBack = &rooms.CallBack{SessionID: sess.ID, Channels: channels, By: who, At: now}
		if m.State != rooms.VideoMessageHandled {
			m.State, m.HandledAt, m.HandledBy = rooms.VideoMessageHandled, &now, who
		}
		return nil
	})
	if err != nil {
		_, _ = s.rooms.End(context.WithoutCancel(r.Context()), c.OrgID, sess.ID, "call-back not sent", who)
		s.roomsError(w, r, err)
		return
	}
	orgName := "Assist"
	if org, err := s.rooms.Organization(r.Context(), c.OrgID); err == nil {
		orgName = org.Name
	}
	// The link was issued a moment ago for LinkTTL, so it works until about now+LinkTTL (the
	// texts show that to the minute); one that could not go out by then is not worth sending
	// (Expires). The ids name the message:
	// one call-back per message (the compare-and-set above), so nothing is ever sent twice.
	now := time.Now().UTC()
	validUntil := now.Add(s.cfg.LinkTTL)
	var errs []error
	for _, ch := range channels {
		msg := notify.Message{ID: m.ID + ".callback." + ch, OrgID: c.OrgID, AppointmentID: m.ID,
			Channel: notify.Channel(ch), Kind: notify.KindCallBack, To: targets[notify.Channel(ch)], Language: m.Customer.Language,
			Data: notify.TemplateData{CustomerName: m.Customer.Name, OrganizationName: orgName, Link: customerURL,
				Start: now, End: validUntil, TimeZone: "UTC"}, Expires: validUntil}
		if err := s.notifier.Enqueue(r.Context(), msg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ch, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Error("queue call-back link", "video_message", m.ID, "err", err)
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSessionCreate, sess.ID, ""))
	s.record(r.Context(), s.auditFromRequest(r, actionVideoMessageCallBack, sess.ID, m.ID))
	v := s.viewVideoMessage(updated, true)
	if err := s.callBackNotifications(r.Context(), updated, &v); err != nil {
		s.log.Warn("call-back notifications", "err", err)
	}
	v.CallBack.CustomerURL, v.CallBack.SpecialistURL = customerURL, specialistURL
	writeJSON(w, http.StatusCreated, v)
}

// actorName names who acted through the API: a specialist's id or an API key's name.
func actorName(c caller) string {
	if c.SpecialistID != "" {
		return c.SpecialistID
	}
	return "api:" + c.KeyName
}

// ---- opening hours on the socket ----

// offerMessageAfterHours tells a customer who joins while the organisation is closed that
// they may leave a message now (they still keep their place in the line).
func (p *participant) offerMessageAfterHours(ctx context.Context) {
	if p.role != rooms.RoleCustomer {
		return
	}
	org, err := p.srv.rooms.Organization(ctx, p.orgID)
	if err != nil || org.Policy.OpeningHours.OpenAt(time.Now()) {
		return
	}
	var out wire.AfterHours
	if next, ok := org.Policy.OpeningHours.NextOpening(time.Now()); ok {
		next = next.UTC()
		out.OpensAt = &next
	}
	p.send(wire.TypeAfterHours, out)
}

// applyMessagePolicy applies a policy patch's opening hours and dispatch receiver.
func applyMessagePolicy(p *rooms.Policy, hours *rooms.OpeningHours, dispatch *string) {
	if hours != nil {
		if len(hours.Weekly) == 0 {
			p.OpeningHours = nil
		} else {
			p.OpeningHours = hours
		}
	}
	if dispatch != nil {
		p.DispatchWebhookID = strings.TrimSpace(*dispatch)
	}
}
