package wire

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The staff socket (/v1/staff) is a specialist's console outside any call: presence, the
// specialists' chat, the organisation's live queue and notices (a colleague's invitation, a
// session handed over). It has its own message set, decoded by DecodeStaff; errors are the
// same Error messages as on /v1/signal.

// Staff socket, client → server.
const (
	// TypeStaffHello is the first message: the console token.
	TypeStaffHello Type = "staff_hello"
	// TypePresenceSet sets the specialist's own (manual) presence.
	TypePresenceSet Type = "presence_set"
	// TypeTeamSend posts a chat message to a colleague or to the organisation's team channel.
	TypeTeamSend Type = "team_send"
	// TypeTeamRead marks a chat channel read up to a message.
	TypeTeamRead Type = "team_read"
	// TypeQueueAdmit and TypeQueueDeny admit or turn away a waiting customer from the
	// organisation's queue, in any of its sessions.
	TypeQueueAdmit Type = "queue_admit"
	TypeQueueDeny  Type = "queue_deny"
	// TypeQueueTransfer assigns a waiting customer's session to a named colleague.
	TypeQueueTransfer Type = "queue_transfer"
)

// Staff socket, server → client.
const (
	// TypeStaffWelcome answers staff_hello.
	TypeStaffWelcome Type = "staff_welcome"
	// TypePresence is the organisation's specialists with their presence, sent on every change.
	TypePresence Type = "presence"
	// TypeTeamMessage is one chat message (new, or history on connect).
	TypeTeamMessage Type = "team_message"
	// TypeTeamUnread is the specialist's unread counts per channel.
	TypeTeamUnread Type = "team_unread"
	// TypeOrgQueue is everyone waiting in the organisation's sessions, sent on every change.
	TypeOrgQueue Type = "org_queue"
	// TypeQueueOffer offers a newly waiting ad hoc customer to a specialist.
	TypeQueueOffer Type = "queue_offer"
	// TypeSessionAssigned tells a specialist a waiting customer's session was handed to them.
	TypeSessionAssigned Type = "session_assigned"
	// TypeStaffDone acknowledges a queue_admit, queue_deny or queue_transfer.
	TypeStaffDone Type = "staff_done"
)

// Presence statuses. Available, busy and away can be set by hand; busy is also set while the
// specialist is in a session, offline when no console of theirs is open.
const (
	PresenceAvailable = "available"
	PresenceBusy      = "busy"
	PresenceAway      = "away"
	PresenceOffline   = "offline"
)

// TeamChannel is the name of the organisation's team channel; a one-to-one channel is named
// by the colleague's specialist id.
const TeamChannel = "team"

// Limits of the staff messages.
const maxTeamTextLen = 2000

// StaffHello opens a staff socket.
type StaffHello struct {
	Token string `json:"token"`
}

// StaffWelcome says who the socket belongs to.
type StaffWelcome struct {
	SpecialistID   string `json:"specialist_id"`
	OrganizationID string `json:"organization_id"`
	Name           string `json:"name"`
	Role           string `json:"role"`
}

// PresenceSet sets the manual presence: available, busy or away.
type PresenceSet struct {
	Status string `json:"status"`
}

// PresenceEntry is one specialist's presence.
type PresenceEntry struct {
	SpecialistID string `json:"specialist_id"`
	Name         string `json:"name"`
	// Status is what colleagues see: available, busy, away or offline.
	Status string `json:"status"`
	// Manual is what the specialist chose (available, busy or away).
	Manual    string `json:"manual"`
	InSession bool   `json:"in_session"`
	Since     string `json:"since"`
}

// Presence is the organisation's specialists.
type Presence struct {
	Specialists []PresenceEntry `json:"specialists"`
}

// TeamSend posts a chat message: To is a colleague's specialist id, or "team".
type TeamSend struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

// TeamRead marks Channel ("team" or the colleague's id) read up to and including Seq.
type TeamRead struct {
	Channel string `json:"channel"`
	Seq     uint64 `json:"seq"`
}

// TeamMessage is one chat message. Channel is as the receiver names it: "team", or the other
// specialist's id for a one-to-one message.
type TeamMessage struct {
	Seq      uint64 `json:"seq"`
	Channel  string `json:"channel"`
	From     string `json:"from"`
	FromName string `json:"from_name"`
	To       string `json:"to"`
	Text     string `json:"text"`
	SentAt   string `json:"sent_at"`
	History  bool   `json:"history,omitempty"`
}

// TeamUnread is the number of unread messages per channel.
type TeamUnread struct {
	Unread map[string]int `json:"unread"`
}

// QueueAdmit admits a waiting customer of one of the organisation's sessions.
type QueueAdmit struct {
	SessionID     string `json:"session_id"`
	ParticipantID string `json:"participant_id"`
}

// QueueDeny turns a waiting customer away with a reason.
type QueueDeny struct {
	SessionID     string `json:"session_id"`
	ParticipantID string `json:"participant_id"`
	Reason        string `json:"reason,omitempty"`
}

// QueueTransfer assigns the session a customer waits in to a colleague.
type QueueTransfer struct {
	SessionID    string `json:"session_id"`
	SpecialistID string `json:"specialist_id"`
}

// StaffDone acknowledges a queue action.
type StaffDone struct {
	Action        string `json:"action"`
	SessionID     string `json:"session_id"`
	ParticipantID string `json:"participant_id,omitempty"`
}

// OrgQueueEntry is one waiting customer of the organisation.
type OrgQueueEntry struct {
	SessionID     string `json:"session_id"`
	ParticipantID string `json:"participant_id"`
	Name          string `json:"name"`
	Position      int    `json:"position"`
	Since         string `json:"since"`
	// Kind is "appointment" or "ad_hoc".
	Kind string `json:"kind"`
	// Diagnostics is the customer's device-check verdict (ok, warning, fail) when known.
	Diagnostics string `json:"diagnostics,omitempty"`
	Language    string `json:"language,omitempty"`
	// AssignedTo is the specialist the session is assigned to (transfer), if any.
	AssignedTo     string `json:"assigned_to,omitempty"`
	AssignedToName string `json:"assigned_to_name,omitempty"`
	// Reconnecting is set while the customer's page is reconnecting.
	Reconnecting bool `json:"reconnecting,omitempty"`
}

// OrgQueue is everyone waiting in the organisation's sessions, by arrival; a specialist sees
// the sessions assigned to them first.
type OrgQueue struct {
	Waiting []OrgQueueEntry `json:"waiting"`
}

// QueueOffer offers a waiting ad hoc customer. Stage is "available" when it goes to the
// available specialists first, "everyone" when it goes to every specialist of the organisation.
type QueueOffer struct {
	Stage         string `json:"stage"`
	SessionID     string `json:"session_id"`
	ParticipantID string `json:"participant_id"`
	Name          string `json:"name"`
	Since         string `json:"since"`
}

// SessionAssigned tells a specialist that a session was handed to them.
type SessionAssigned struct {
	SessionID  string `json:"session_id"`
	By         string `json:"by"`
	ByName     string `json:"by_name"`
	WaitingFor string `json:"waiting_for,omitempty"` // the waiting customer's name
}

// DecodeStaff parses a staff socket frame into its typed payload and validates it. A returned
// error is always an *Error fit to send back.
func DecodeStaff(frame []byte) (Type, any, error) {
	if len(frame) > MaxMessageSize {
		return "", nil, Errorf(CodeTooLarge, "message is larger than %d bytes", MaxMessageSize)
	}
	var env Envelope
	if err := strictUnmarshal(frame, &env); err != nil {
		return "", nil, Errorf(CodeBadMessage, "not a message envelope: %v", err)
	}
	var payload interface{ validate() error }
	switch env.Type {
	case TypeStaffHello:
		payload = &StaffHello{}
	case TypePresenceSet:
		payload = &PresenceSet{}
	case TypeTeamSend:
		payload = &TeamSend{}
	case TypeTeamRead:
		payload = &TeamRead{}
	case TypeQueueAdmit:
		payload = &QueueAdmit{}
	case TypeQueueDeny:
		payload = &QueueDeny{}
	case TypeQueueTransfer:
		payload = &QueueTransfer{}
	case "":
		return "", nil, Errorf(CodeBadMessage, "message has no type")
	default:
		return env.Type, nil, Errorf(CodeUnknownType, "unknown message type %q", truncate(string(env.Type), 40))
	}
	if err := strictUnmarshal(env.Payload, payload); err != nil {
		return env.Type, nil, Errorf(CodeBadMessage, "bad %s payload: %v", env.Type, err)
	}
	if err := payload.validate(); err != nil {
		return env.Type, nil, Errorf(CodeBadMessage, "bad %s payload: %v", env.Type, err)
	}
	return env.Type, payload, nil
}

func (m *StaffHello) validate() error {
	if m.Token == "" {
		return errors.New("token is required")
	}
	if len(m.Token) > maxTokenLen {
		return errors.New("token is too long")
	}
	return nil
}

// ValidManualPresence says whether status may be set by hand.
func ValidManualPresence(status string) bool {
	return status == PresenceAvailable || status == PresenceBusy || status == PresenceAway
}

func (m *PresenceSet) validate() error {
	if !ValidManualPresence(m.Status) {
		return errors.New(`status must be "available", "busy" or "away"`)
	}
	return nil
}

func (m *TeamSend) validate() error {
	m.Text = strings.TrimSpace(m.Text)
	switch {
	case m.To == "":
		return errors.New(`to is required (a specialist id or "team")`)
	case len(m.To) > maxIDLen:
		return errors.New("to is too long")
	case m.Text == "":
		return errors.New("text is empty")
	case len(m.Text) > maxTeamTextLen:
		return fmt.Errorf("text is longer than %d bytes", maxTeamTextLen)
	case !utf8.ValidString(m.Text):
		return errors.New("text is not UTF-8")
	}
	return nil
}

func (m *TeamRead) validate() error {
	if m.Channel == "" || len(m.Channel) > maxIDLen {
		return errors.New("channel is missing or too long")
	}
	return nil
}

func validateSessionParticipant(sessionID, participantID string) error {
	if sessionID == "" || len(sessionID) > maxIDLen {
		return errors.New("session_id is missing or too long")
	}
	return validateID(participantID)
}

func (m *QueueAdmit) validate() error {
	return validateSessionParticipant(m.SessionID, m.ParticipantID)
}

func (m *QueueDeny) validate() error {
	if len(m.Reason) > maxReasonLen {
		return fmt.Errorf("reason is longer than %d bytes", maxReasonLen)
	}
	return validateSessionParticipant(m.SessionID, m.ParticipantID)
}

func (m *QueueTransfer) validate() error {
	if m.SessionID == "" || len(m.SessionID) > maxIDLen {
		return errors.New("session_id is missing or too long")
	}
	if m.SpecialistID == "" || len(m.SpecialistID) > maxIDLen {
		return errors.New("specialist_id is missing or too long")
	}
	return nil
}
