package signaling

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// The specialists' chat (rooms/teamchat.go): the organisation's team channel and one-to-one
// channels. A message is kept in JetStream, then pushed over the staff sockets (notifyStaff):
// to everyone for the team channel, to both specialists for a one-to-one message. Unread
// counts are the server's on connect and after each team_read; in between the console counts
// the messages that arrive.

// teamMessage is a kept message as the specialist sees it.
func teamMessage(m *rooms.TeamMessage, specialistID string, history bool) wire.TeamMessage {
	return wire.TeamMessage{Seq: m.Seq, Channel: m.ChannelFor(specialistID), From: m.From, FromName: m.FromName,
		To: m.To, Text: m.Text, SentAt: m.SentAt.Format(time.RFC3339Nano), History: history}
}

// postTeamMessage checks the recipient, keeps the message and pushes it.
func (s *Server) postTeamMessage(ctx context.Context, orgID, from, fromName, to, text string) (*rooms.TeamMessage, error) {
	if to != rooms.TeamChannel {
		if to == from {
			return nil, rooms.ErrSelfMessage
		}
		if _, err := s.rooms.Specialist(ctx, orgID, to); err != nil {
			return nil, errNoSuchColleague
		}
	}
	m, err := s.staff.chat.Post(ctx, orgID, from, fromName, to, text)
	if err != nil {
		return nil, err
	}
	if to == rooms.TeamChannel {
		s.notifyStaff(orgID, "", wire.TypeTeamMessage, teamMessage(m, from, false))
	} else {
		s.notifyStaff(orgID, to, wire.TypeTeamMessage, teamMessage(m, to, false))
		s.notifyStaff(orgID, from, wire.TypeTeamMessage, teamMessage(m, from, false))
	}
	return m, nil
}

// unread computes a specialist's unread counts per channel.
func (s *Server) teamUnread(ctx context.Context, orgID, specialistID string) (map[string]int, []rooms.TeamMessage, error) {
	msgs, err := s.staff.chat.History(ctx, orgID, specialistID, "", 0)
	if err != nil {
		return nil, nil, err
	}
	markers, err := s.staff.chat.Markers(ctx, orgID, specialistID)
	if err != nil {
		return nil, nil, err
	}
	return rooms.Unread(msgs, specialistID, markers), msgs, nil
}

// sendTeamHistory sends a console that has just opened the chat's history and unread counts.
func (s *Server) sendTeamHistory(ctx context.Context, c *staffConn) {
	unread, msgs, err := s.teamUnread(ctx, c.orgID, c.specialistID)
	if err != nil {
		c.log.Warn("team chat: history", "err", err)
		return
	}
	for i := range msgs {
		c.send(wire.TypeTeamMessage, teamMessage(&msgs[i], c.specialistID, true))
	}
	c.send(wire.TypeTeamUnread, wire.TeamUnread{Unread: unread})
}

func (s *Server) staffTeamSend(ctx context.Context, c *staffConn, m *wire.TeamSend) *wire.Error {
	_, err := s.postTeamMessage(ctx, c.orgID, c.specialistID, c.name, m.To, m.Text)
	return teamChatToWire(c, err)
}

func teamChatToWire(c *staffConn, err error) *wire.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNoSuchColleague), errors.Is(err, rooms.ErrNotFound):
		return wire.Errorf(wire.CodeNotFound, "no such specialist")
	case errors.Is(err, rooms.ErrSelfMessage):
		return wire.Errorf(wire.CodeBadMessage, "a message to oneself")
	default:
		c.log.Error("team chat", "err", err)
		return wire.Errorf(wire.CodeInternal, "could not send the message")
	}
}

func (s *Server) staffTeamRead(ctx context.Context, c *staffConn, m *wire.TeamRead) *wire.Error {
	if _, err := s.staff.chat.MarkRead(ctx, c.orgID, c.specialistID, m.Channel, m.Seq); err != nil {
		return teamChatToWire(c, err)
	}
	s.pushUnread(ctx, c.orgID, c.specialistID)
	return nil
}

// pushUnread sends a specialist's consoles their unread counts (after a read marker moved).
func (s *Server) pushUnread(ctx context.Context, orgID, specialistID string) {
	unread, _, err := s.teamUnread(ctx, orgID, specialistID)
	if err != nil {
		s.log.Warn("team chat: unread", "err", err)
		return
	}
	s.notifyStaff(orgID, specialistID, wire.TypeTeamUnread, wire.TeamUnread{Unread: unread})
}

// ---- the API (signed-in specialists only) ----

type teamMessageList struct {
	Data   []wire.TeamMessage `json:"data"`
	Unread map[string]int     `json:"unread"`
}

type teamPost struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

type teamReadRequest struct {
	Channel string `json:"channel"`
	Seq     uint64 `json:"seq"`
}

func (s *Server) teamChatError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNoSuchColleague), errors.Is(err, rooms.ErrNotFound):
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such specialist")
	case errors.Is(err, rooms.ErrSelfMessage):
		problem.Write(w, r, http.StatusBadRequest, "bad-request", "a message to oneself")
	default:
		s.internalError(w, r, err)
	}
}

// handleTeamMessages lists the latest messages of one channel (?channel=team or a colleague's
// id) or of all the caller's channels, with the unread counts.
func (s *Server) handleTeamMessages(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	channel := r.URL.Query().Get("channel")
	if channel != "" && channel != rooms.TeamChannel && !rooms.ValidID(channel) {
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", `channel must be "team" or a specialist id`)
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "limit must be a whole number from 1 to 500")
			return
		}
		limit = n
	}
	msgs, err := s.staff.chat.History(r.Context(), c.OrgID, c.SpecialistID, channel, limit)
	if err != nil {
		s.teamChatError(w, r, err)
		return
	}
	unread, _, err := s.teamUnread(r.Context(), c.OrgID, c.SpecialistID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	out := teamMessageList{Data: make([]wire.TeamMessage, 0, len(msgs)), Unread: unread}
	for i := range msgs {
		out.Data = append(out.Data, teamMessage(&msgs[i], c.SpecialistID, true))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handlePostTeamMessage(w http.ResponseWriter, r *http.Request) {
	var in teamPost
	if !readJSON(w, r, &in) {
		return
	}
	m := wire.TeamSend{To: in.To, Text: in.Text}
	if err := validateTeamSend(&m); err != nil {
		problem.Write(w, r, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	c := callerOf(r)
	sp, err := s.rooms.Specialist(r.Context(), c.OrgID, c.SpecialistID)
	if err != nil {
		s.teamChatError(w, r, err)
		return
	}
	msg, err := s.postTeamMessage(r.Context(), c.OrgID, c.SpecialistID, sp.Name, m.To, m.Text)
	if err != nil {
		s.teamChatError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, teamMessage(msg, c.SpecialistID, false))
}

// validateTeamSend checks a chat message posted through the API as the socket's are.
func validateTeamSend(m *wire.TeamSend) error {
	frame, err := wire.Encode(wire.TypeTeamSend, m)
	if err != nil {
		return err
	}
	_, payload, err := wire.DecodeStaff(frame)
	if err != nil {
		return err
	}
	*m = *payload.(*wire.TeamSend)
	return nil
}

func (s *Server) handleTeamRead(w http.ResponseWriter, r *http.Request) {
	var in teamReadRequest
	if !readJSON(w, r, &in) {
		return
	}
	if in.Channel != rooms.TeamChannel && !rooms.ValidID(in.Channel) {
		problem.Write(w, r, http.StatusBadRequest, "bad-request", `channel must be "team" or a specialist id`)
		return
	}
	c := callerOf(r)
	if _, err := s.staff.chat.MarkRead(r.Context(), c.OrgID, c.SpecialistID, in.Channel, in.Seq); err != nil {
		s.teamChatError(w, r, err)
		return
	}
	s.pushUnread(r.Context(), c.OrgID, c.SpecialistID)
	unread, _, err := s.teamUnread(r.Context(), c.OrgID, c.SpecialistID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.TeamUnread{Unread: unread})
}
