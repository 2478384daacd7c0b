package signaling

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/openapi"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
	"github.com/assist-video/assist/webclient"
)

const maxJSONBody = 64 << 10

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.instrument(pattern, h))
		s.patterns = append(s.patterns, pattern)
	}
	handle("GET /healthz", s.handleHealth)
	handle("GET /readyz", s.handleReady)
	handle("GET /livez", s.handleLive)
	mux.Handle("GET /metrics", s.metrics.handler())

	handle("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	handle("GET /console/{$}", webclient.ServeConsole)
	handle("GET /c/{token}", s.limitIP(s.handleLinkPage(auth.RoleCustomer, webclient.ServeCustomer)))
	handle("GET /s/{token}", s.limitIP(s.handleLinkPage(auth.RoleSpecialist, webclient.ServeConsole)))
	handle("GET /e/{token}", s.limitIP(s.handleLinkPage(auth.RoleExpert, s.handleExpertPage)))
	mux.Handle("GET /assets/", webclient.Assets())

	handle("GET /v1/signal", s.acceptRelay(s.limitIP(s.limitSockets(s.handleSignal))))
	handle("GET /v1/staff", s.limitIP(s.limitSockets(s.handleStaff))) // staff.go: the console's live side
	handle("GET /v1/presence", s.authorized(s.handleListPresence))
	handle("PUT /v1/presence/me", s.authorized(s.handleSetPresence))
	handle("GET /v1/team/messages", s.authorized(s.handleTeamMessages))
	handle("POST /v1/team/messages", s.authorized(s.handlePostTeamMessage))
	handle("PUT /v1/team/read", s.authorized(s.handleTeamRead))
	handle("GET /v1/queue", s.authorized(s.handleOrgQueue))
	handle("POST /v1/sessions/{id}/transfer", s.authorized(s.handleTransfer))
	handle("POST /v1/auth/login", s.limitIP(s.handleLogin))
	handle("POST /v1/auth/idp", s.limitIP(s.handleIdPSignIn))
	handle("GET /v1/organization/identity-provider", s.authorized(s.handleGetIdentityProvider))
	handle("PUT /v1/organization/identity-provider", s.authorized(s.handlePutIdentityProvider))
	handle("DELETE /v1/organization/identity-provider", s.authorized(s.handleDeleteIdentityProvider))
	handle("POST /v1/sessions", s.authorized(s.handleCreateSession))
	handle("GET /v1/sessions", s.authorized(s.handleListSessions))
	handle("GET /v1/sessions/{id}", s.authorized(s.handleGetSession))
	handle("POST "+internalRoute, s.handleInternalMedia) // forward.go: signed by a node of the cluster
	handle("DELETE /v1/sessions/{id}", s.authorized(s.handleDeleteSession))
	handle("POST /v1/sessions/{id}/end", s.authorized(s.handleEndSession))
	handle("GET /v1/organization", s.authorized(s.handleGetOrganization))
	handle("PATCH /v1/organization", s.authorized(s.handleUpdateOrganization))
	handle("GET /v1/specialists", s.authorized(s.handleListSpecialists))
	handle("POST /v1/specialists", s.authorized(s.handleCreateSpecialist))
	handle("GET /v1/api-keys", s.authorized(s.handleListAPIKeys))
	handle("POST /v1/api-keys", s.authorized(s.handleCreateAPIKey))
	handle("DELETE /v1/api-keys/{id}", s.authorized(s.handleRevokeAPIKey))
	handle("GET /v1/orgs", s.authorized(s.handleListOrganizations))
	handle("POST /v1/orgs", s.authorized(s.handleCreateOrganization))
	handle("POST /v1/signing-keys/rotate", s.authorized(s.handleRotateSigningKey))
	handle("GET /v1/analytics", s.authorized(s.handleAnalytics))
	handle("GET /v1/organization/seat-report", s.authorized(s.handleSeatReport))
	handle("PATCH /v1/orgs/{id}", s.authorized(s.handleSetSeats))
	handle("GET /v1/notification-settings", s.authorized(s.handleGetNotificationSettings))
	handle("PUT /v1/notification-settings", s.authorized(s.handlePutNotificationSettings))
	handle("DELETE /v1/notification-settings", s.authorized(s.handleDeleteNotificationSettings))
	handle("POST /v1/sessions/{id}/links", s.authorized(s.handleNewLinks))
	handle("POST /v1/sessions/{id}/invitations", s.authorized(s.handleCreateInvitation))
	handle("GET /v1/sessions/{id}/invitations", s.authorized(s.handleListInvitations))
	handle("DELETE /v1/sessions/{id}/invitations/{iid}", s.authorized(s.handleRevokeInvitation))
	handle("POST /v1/sessions/{id}/handover", s.authorized(s.handleHandover))
	handle("GET /v1/invitations", s.authorized(s.handleMyInvitations))
	handle("POST /v1/sessions/{id}/recordings", s.authorized(s.handleStartRecording))
	handle("GET /v1/sessions/{id}/recordings", s.authorized(s.handleListRecordings))
	handle("GET /v1/sessions/{id}/quality", s.authorized(s.handleSessionQuality))
	handle("POST /v1/sessions/{id}/recordings/{rid}/stop", s.authorized(s.handleStopRecording))
	handle("POST /v1/appointments", s.authorized(s.handleCreateAppointment))
	handle("GET /v1/appointments", s.authorized(s.handleListAppointments))
	handle("GET /v1/appointments/{id}", s.authorized(s.handleGetAppointment))
	handle("PATCH /v1/appointments/{id}", s.authorized(s.handleUpdateAppointment))
	handle("DELETE /v1/appointments/{id}", s.authorized(s.handleCancelAppointment))
	handle("POST /v1/webhooks", s.authorized(s.handleCreateWebhook))
	handle("GET /v1/webhooks", s.authorized(s.handleListWebhooks))
	handle("GET /v1/webhooks/{id}", s.authorized(s.handleGetWebhook))
	handle("DELETE /v1/webhooks/{id}", s.authorized(s.handleDeleteWebhook))
	handle("POST /v1/webhooks/{id}/rotate-secret", s.authorized(s.handleRotateWebhookSecret))
	handle("GET /v1/webhooks/{id}/deliveries", s.authorized(s.handleWebhookDeliveries))
	handle("POST /v1/webhook-deliveries/{id}/redeliver", s.authorized(s.handleRedeliver))
	handle("GET /v1/audit-events", s.authorized(s.handleAuditEvents))
	handle("POST /v1/sessions/{id}/files", s.limitIP(s.slowUpload(s.handleUploadFile)))
	handle("POST /v1/sessions/{id}/snapshots", s.limitIP(s.slowUpload(s.handleUploadSnapshot)))
	handle("GET /v1/downloads/{token}", s.limitIP(s.slowDownload(s.handleDownload)))
	handle("POST /v1/sessions/{id}/video-messages", s.limitIP(s.slowUpload(s.handleUploadVideoMessage)))
	handle("GET /v1/video-messages", s.authorized(s.handleListVideoMessages))
	handle("GET /v1/video-messages/{id}", s.authorized(s.handleGetVideoMessage))
	handle("PATCH /v1/video-messages/{id}", s.authorized(s.handleUpdateVideoMessage))
	handle("DELETE /v1/video-messages/{id}", s.authorized(s.handleDeleteVideoMessage))
	handle("POST /v1/video-messages/{id}/call-back", s.authorized(s.handleCallBack))
	handle("GET /v1/sessions/{id}/emergency", s.authorized(s.handleGetEmergency))
	handle("POST /v1/sessions/{id}/emergency", s.authorized(s.handleSetEmergency))
	s.routeDiagnostics(handle) // GET /test and GET /v1/echo
	handle("GET /v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Document)
	})
	handle("/v1/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such API route")
	})
	return webclient.SecurityHeaders(s.recoverPanics(mux))
}

// statusRecorder remembers the status code for metrics and logs.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack hands the connection to the WebSocket upgrader.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.status = http.StatusSwitchingProtocols
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		s.metrics.httpRequests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
	})
}

func (s *Server) recoverPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "path", r.URL.Path, "panic", v)
				problem.Write(w, r, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.bus.Ping(ctx); err != nil {
		problem.Write(w, r, http.StatusServiceUnavailable, "nats-unavailable", "NATS: "+err.Error())
		return
	}
	if err := s.objects.Ping(ctx); err != nil {
		problem.Write(w, r, http.StatusServiceUnavailable, "storage-unavailable", "object storage: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleLive answers while the process serves HTTP: unlike /healthz it does not depend on NATS
// or storage, whose outages a restart would not cure.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.notReady.Load() || s.draining.Load() {
		problem.Write(w, r, http.StatusServiceUnavailable, "draining", "this node is shutting down")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// caller is who an API request comes from: always exactly one organisation.
type caller struct {
	OrgID        string
	SpecialistID string          // empty for API keys
	KeyName      string          // which API key: its name and the start of its hash
	Role         rooms.StaffRole // a specialist's role; empty for API keys
	Perms        []string        // what the caller may do (see routePermissions)
}

type callerKey struct{}

// authorized admits requests bearing an API key or a console token of one organisation.
func (s *Server) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r)
		if err != nil {
			if !s.allowIP(w, r) { // guessing keys and tokens costs the address's budget
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="assist"`)
			problem.Write(w, r, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
		if !s.allowCaller(w, r, c) || !s.permitted(w, r, c) {
			return
		}
		s.idempotent(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), c, h)
	}
}

var errNoCredentials = errors.New("send an API key or a console token as Authorization: Bearer")

func (s *Server) authenticate(r *http.Request) (caller, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return caller{}, errNoCredentials
	}
	if strings.HasPrefix(token, auth.APIKeyPrefix) {
		key, err := s.rooms.APIKeyByHash(r.Context(), auth.HashAPIKey(token))
		if err != nil {
			return caller{}, errors.New("unknown API key")
		}
		return callerForKey(key), nil
	}
	claims, err := s.issuer.VerifyConsole(token)
	if err != nil {
		return caller{}, errors.New("console token: " + err.Error())
	}
	// The role is read now, not from the token: a changed role or a removed specialist
	// takes effect at once.
	sp, err := s.rooms.Specialist(r.Context(), claims.Org, claims.Subject)
	if err != nil {
		return caller{}, errors.New("console token: the specialist no longer exists")
	}
	return callerForSpecialist(sp), nil
}

func callerOf(r *http.Request) caller { return r.Context().Value(callerKey{}).(caller) }

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var in api.Login
	if !readJSON(w, r, &in) || !s.allowLogin(w, r, in.Email) {
		return
	}
	sp, err := s.rooms.SpecialistByEmail(r.Context(), in.Email)
	if err != nil || !auth.CheckPassword(sp.PasswordHash, in.Password) {
		if err != nil && !errors.Is(err, rooms.ErrNotFound) {
			s.internalError(w, r, err)
			return
		}
		if sp != nil { // a known account: its organisation sees the failed attempt
			ev := s.auditFromRequest(r, audit.ActionSignInFailed, "", sp.Email)
			ev.OrgID, ev.Actor = sp.OrgID, audit.Actor{Kind: audit.ActorSpecialist, ID: sp.ID, Name: sp.Name}
			s.record(r.Context(), ev)
		}
		problem.Write(w, r, http.StatusUnauthorized, "bad-credentials", "wrong email or password")
		return
	}
	ev := s.auditFromRequest(r, audit.ActionSignIn, "", sp.Email)
	ev.OrgID, ev.Actor = sp.OrgID, audit.Actor{Kind: audit.ActorSpecialist, ID: sp.ID, Name: sp.Name}
	s.record(r.Context(), ev)
	token, exp, err := s.issuer.IssueConsole(sp.OrgID, sp.ID, s.cfg.ConsoleTTL)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.LoginResult{Token: token, ExpiresAt: exp})
}

func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	var in api.CreateSession
	if r.ContentLength != 0 && !readJSON(w, r, &in) {
		return
	}
	c := callerOf(r)
	sess, err := s.rooms.CreateSession(r.Context(), c.OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.metrics.sessions.Inc()
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSessionCreate, sess.ID, ""))
	out := s.sessionView(sess)
	if out.CustomerURL, err = s.link(sess, auth.RoleCustomer); err == nil {
		out.SpecialistURL, err = s.link(sess, auth.RoleSpecialist)
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/sessions/"+sess.ID)
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) link(sess *rooms.Session, role auth.Role) (string, error) {
	ttl := s.cfg.LinkTTL
	if sess.ClosesAt != nil { // an appointment's link lasts until its window closes
		ttl = max(ttl, time.Until(*sess.ClosesAt)+time.Hour)
	}
	token, _, err := s.issuer.IssueLink(sess.OrgID, sess.ID, role, ttl)
	if err != nil {
		return "", err
	}
	path := "/c/"
	if role == auth.RoleSpecialist {
		path = "/s/"
	}
	return s.baseURL + path + token, nil
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "limit must be a whole number from 1 to 100")
			return
		}
		limit = n
	}
	after := r.URL.Query().Get("starting_after")
	if after != "" && !rooms.ValidID(after) {
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "starting_after is not a session id")
		return
	}
	list, more, err := s.rooms.ListSessions(r.Context(), callerOf(r).OrgID, limit, after)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	out := api.SessionList{Data: make([]api.Session, 0, len(list)), HasMore: more}
	for i := range list {
		out.Data = append(out.Data, s.sessionView(&list[i]))
	}
	s.fillRemoteTracks(r.Context(), list, out.Data) // counters from the sessions' media nodes
	if more && len(list) > 0 {
		out.NextCursor = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.rooms.Session(r.Context(), callerOf(r).OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	out := s.sessionView(sess)
	one := []api.Session{out}
	s.fillRemoteTracks(r.Context(), []rooms.Session{*sess}, one) // counters from the media node
	out = one[0]
	entries, err := s.rooms.Timeline(r.Context(), sess.OrgID, sess.ID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	out.Timeline = make([]wire.Envelope, 0, len(entries))
	for _, frame := range entries {
		var env wire.Envelope
		if json.Unmarshal(frame, &env) == nil {
			out.Timeline = append(out.Timeline, s.freshURLs(env))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleEndSession(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	actor := c.SpecialistID
	if actor == "" {
		actor = "api"
	}
	sess, err := s.rooms.End(r.Context(), c.OrgID, r.PathValue("id"), "ended through the API", actor)
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	s.closeSessionMedia(sess.OrgID, sess.ID)
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSessionEnd, sess.ID, ""))
	writeJSON(w, http.StatusOK, s.sessionView(sess))
}

// sessionView is the API's picture of a session, with live counters from this node's SFU.
func (s *Server) sessionView(sess *rooms.Session) api.Session {
	stats := map[string][]media.TrackStats{}
	for _, ps := range s.sfu.Stats(sess.ID) {
		stats[ps.ParticipantID] = ps.Tracks
	}
	out := api.Session{
		ID: sess.ID, OrganizationID: sess.OrgID, State: string(sess.State),
		CreatedAt: sess.CreatedAt, EndedAt: sess.EndedAt, MediaNode: sess.MediaNode, HandedOverTo: sess.HandedOverTo,
		AssignedTo:   sess.AssignedTo,
		Participants: make([]api.Participant, 0, len(sess.Participants)),
	}
	for _, p := range sess.Participants {
		ap := api.Participant{ID: p.ID, Role: string(p.Role), Name: p.Name, State: string(p.State),
			JoinedAt: p.JoinedAt, LeftAt: p.LeftAt, Tracks: []api.Track{}}
		for _, t := range stats[p.ID] {
			ap.Tracks = append(ap.Tracks, api.Track{ID: t.ID, Kind: t.Kind, Codec: t.Codec,
				PacketsReceived: t.PacketsReceived, BytesReceived: t.BytesReceived,
				PacketsForwarded: t.PacketsForwarded, BytesForwarded: t.BytesForwarded})
		}
		out.Participants = append(out.Participants, ap)
	}
	return out
}

// handleLinkPage checks a session link before serving its page: a bad link never gets a call.
func (s *Server) handleLinkPage(role auth.Role, page http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		claims, err := s.issuer.VerifyLink(r.PathValue("token"))
		switch {
		case errors.Is(err, auth.ErrExpired):
			webclient.ServeError(w, http.StatusGone, "This link has expired", "Ask for a new link to join the session.")
			return
		case err != nil:
			webclient.ServeError(w, http.StatusUnauthorized, "This link is not valid", "Check that you opened the whole link from your message, or ask for a new one.")
			return
		case claims.Role != role:
			webclient.ServeError(w, http.StatusForbidden, "This link is not for this page", "Open the link exactly as you received it.")
			return
		}
		sess, err := s.rooms.Session(r.Context(), claims.Org, claims.Subject)
		if err == nil {
			err = sess.LinkOpen(claims.IssuedAt.Time, time.Now())
		}
		switch {
		case errors.Is(err, rooms.ErrNotFound):
			webclient.ServeError(w, http.StatusNotFound, "This session does not exist", "It may have been deleted. Ask for a new link.")
			return
		case errors.Is(err, rooms.ErrEnded) && sess.EndReason == rooms.ReasonCancelled:
			webclient.ServeError(w, http.StatusGone, "This appointment was cancelled", "You will get a new link if it is booked again.")
			return
		case errors.Is(err, rooms.ErrEnded):
			webclient.ServeError(w, http.StatusGone, "This session has ended", "Thank you. You can close this page.")
			return
		case errors.Is(err, rooms.ErrLinkRevoked):
			webclient.ServeError(w, http.StatusGone, "This link was replaced", "Use the newest link you received.")
			return
		case errors.Is(err, rooms.ErrTooEarly):
			webclient.ServeError(w, http.StatusTooEarly, "Your appointment has not started yet",
				"Come back at "+sess.OpensAt.UTC().Format("Monday 2 January 2006, 15:04 UTC")+", when this link opens.")
			return
		case errors.Is(err, rooms.ErrTooLate):
			webclient.ServeError(w, http.StatusGone, "Your appointment is over", "Ask for a new appointment.")
			return
		case err != nil:
			s.log.Error("link page", "err", err)
			webclient.ServeError(w, http.StatusServiceUnavailable, "Please try again", "The service is busy right now.")
			return
		}
		page(w, r)
	}
}

func (s *Server) roomsError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, rooms.ErrNotFound):
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such session")
	case errors.Is(err, rooms.ErrInvalidState), errors.Is(err, rooms.ErrEnded), errors.Is(err, rooms.ErrDenied):
		problem.Write(w, r, http.StatusConflict, "invalid-state", err.Error())
	case errors.Is(err, rooms.ErrConflict):
		problem.Write(w, r, http.StatusConflict, "conflict", err.Error())
	default:
		s.internalError(w, r, err)
	}
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "path", r.URL.Path, "err", err)
	problem.Write(w, r, http.StatusInternalServerError, "internal", "internal error")
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		problem.Write(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type", "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			problem.Write(w, r, http.StatusRequestEntityTooLarge, "too-large", "request body is too large")
			return false
		}
		problem.Write(w, r, http.StatusBadRequest, "bad-request", "request body: "+err.Error())
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		problem.Write(w, r, http.StatusBadRequest, "bad-request", "request body: trailing data after the JSON object")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
