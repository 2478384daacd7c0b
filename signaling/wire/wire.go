// Package wire is the schema of the signaling WebSocket: one JSON envelope with a type and a
// typed payload per type, decoded and validated in one place (see docs/design.md).
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxMessageSize is the largest frame a client may send.
const MaxMessageSize = 64 << 10

// Type names a message.
type Type string

// Client → server.
const (
	TypeJoin  Type = "join"
	TypeAdmit Type = "admit"
	TypeDeny  Type = "deny"
	TypeEnd   Type = "end"
	TypeLeave Type = "leave"
)

// Both directions.
const (
	TypeDescription Type = "description"
	TypeCandidate   Type = "candidate"
)

// Server → client.
const (
	TypeWelcome      Type = "welcome"
	TypeWaiting      Type = "waiting"
	TypeAdmitted     Type = "admitted"
	TypeDenied       Type = "denied"
	TypeQueue        Type = "queue"
	TypeParticipants Type = "participants"
	TypeSessionEnded Type = "session_ended"
	TypeError        Type = "error"
)

// Envelope is every frame on the socket.
type Envelope struct {
	Type    Type            `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Join is the first message a client sends: a link token, or a console token and a session.
type Join struct {
	Token     string `json:"token"`
	SessionID string `json:"session_id,omitempty"`
	Name      string `json:"name,omitempty"`
	// Language is what the participant speaks and reads (BCP 47, such as "fr-CA"), for
	// captions and translation; empty: the appointment's, else unknown.
	Language string `json:"language,omitempty"`
}

// Admit lets a waiting customer into the call.
type Admit struct {
	ParticipantID string `json:"participant_id"`
}

// Deny turns a waiting customer away.
type Deny struct {
	ParticipantID string `json:"participant_id"`
	Reason        string `json:"reason,omitempty"`
}

// Empty is the payload of messages that carry nothing.
type Empty struct{}

// Description is an SDP offer or answer.
type Description struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// Candidate is a trickled ICE candidate.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdp_mid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdp_mline_index,omitempty"`
	UsernameFragment *string `json:"username_fragment,omitempty"`
}

// ICEServer is a STUN or TURN server handed to the browser.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Welcome answers a successful join.
type Welcome struct {
	ParticipantID string      `json:"participant_id"`
	SessionID     string      `json:"session_id"`
	Role          string      `json:"role"`
	SessionState  string      `json:"session_state"`
	ICEServers    []ICEServer `json:"ice_servers"`
}

// Waiting tells a customer they are in the waiting room: their place in the organisation's
// line (every customer waiting in any of its sessions, by arrival), how long the line is, and
// an estimate of the wait from the organisation's recent admissions (absent when unknown).
// TimedOut is set once, on the message sent when the customer has waited queue-timeout.
type Waiting struct {
	Position             int  `json:"position"`
	QueueLength          int  `json:"queue_length,omitempty"`
	EstimatedWaitSeconds *int `json:"estimated_wait_seconds,omitempty"`
	TimedOut             bool `json:"timed_out,omitempty"`
}

// Denied tells a customer they were turned away.
type Denied struct {
	Reason string `json:"reason"`
}

// QueueEntry is one waiting customer as specialists see them.
type QueueEntry struct {
	ParticipantID string `json:"participant_id"`
	Name          string `json:"name"`
	Since         string `json:"since"`
}

// Queue is the waiting room of a session.
type Queue struct {
	Waiting []QueueEntry `json:"waiting"`
}

// RosterEntry is one participant of a session.
type RosterEntry struct {
	ParticipantID string `json:"participant_id"`
	Name          string `json:"name"`
	Role          string `json:"role"`
	State         string `json:"state"`
}

// Participants is the roster of a session.
type Participants struct {
	Participants []RosterEntry `json:"participants"`
}

// SessionEnded tells everyone the session is over.
type SessionEnded struct {
	Reason string `json:"reason"`
}

// ErrorCode classifies a failed request.
type ErrorCode string

// Error codes sent in an Error message.
const (
	CodeBadMessage   ErrorCode = "bad_message"
	CodeUnknownType  ErrorCode = "unknown_type"
	CodeTooLarge     ErrorCode = "too_large"
	CodeUnauthorized ErrorCode = "unauthorized"
	CodeForbidden    ErrorCode = "forbidden"
	CodeNotFound     ErrorCode = "not_found"
	CodeInvalidState ErrorCode = "invalid_state"
	CodeRateLimited  ErrorCode = "rate_limited"
	CodeInternal     ErrorCode = "internal"
)

// Error reports a failed request; the socket stays open unless the server says otherwise.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an Error.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Limits on fields.
const (
	maxTokenLen  = 4096
	maxIDLen     = 64
	maxNameLen   = 80
	maxReasonLen = 200
	maxSDPLen    = 60 << 10
	maxCandLen   = 1024
)

// Decode parses a client frame into its typed payload (a pointer to one of the structs above)
// and validates it. A returned error is always an *Error fit to send back.
func Decode(frame []byte) (Type, any, error) {
	if len(frame) > MaxMessageSize {
		return "", nil, Errorf(CodeTooLarge, "message is larger than %d bytes", MaxMessageSize)
	}
	var env Envelope
	if err := strictUnmarshal(frame, &env); err != nil {
		return "", nil, Errorf(CodeBadMessage, "not a message envelope: %v", err)
	}
	var payload interface{ validate() error }
	switch env.Type {
	case TypeJoin:
		payload = &Join{}
	case TypeAdmit:
		payload = &Admit{}
	case TypeDeny:
		payload = &Deny{}
	case TypeEnd, TypeLeave:
		payload = &Empty{}
	case TypeDescription:
		payload = &Description{}
	case TypeCandidate:
		payload = &Candidate{}
	case TypeChat:
		payload = &ChatSend{}
	case TypeAnnotation:
		payload = &AnnotationSend{}
	case TypePointer:
		payload = &PointerSend{}
	case TypeCameraControl:
		payload = &CameraControlSend{}
	case TypeCameraCapabilities:
		payload = &CameraCapabilitiesSend{}
	case TypeCameraControlResult:
		payload = &CameraControlResultSend{}
	case TypeSnapshotRequest, TypeGeolocationRequest:
		payload = &Empty{}
	case TypeGeolocation:
		payload = &GeolocationSend{}
	case TypeScreenShare:
		payload = &ScreenShareSend{}
	case TypeRecord:
		payload = &RecordSend{}
	case TypeDiagnostics:
		payload = &DiagnosticsSend{}
	case TypeEmergency:
		payload = &EmergencySend{}
	case TypeStats:
		payload = &StatsSend{}
	case "":
		return "", nil, Errorf(CodeBadMessage, "message has no type")
	default:
		return env.Type, nil, Errorf(CodeUnknownType, "unknown message type %q", truncate(string(env.Type), 40))
	}
	if len(env.Payload) > 0 && !bytes.Equal(env.Payload, []byte("null")) {
		if err := strictUnmarshal(env.Payload, payload); err != nil {
			return env.Type, nil, Errorf(CodeBadMessage, "bad %s payload: %v", env.Type, err)
		}
	}
	if err := payload.validate(); err != nil {
		return env.Type, nil, Errorf(CodeBadMessage, "bad %s payload: %v", env.Type, err)
	}
	return env.Type, payload, nil
}

// Encode builds a server frame.
func Encode(t Type, payload any) ([]byte, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Envelope{Type: t, Payload: raw})
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (m *Join) validate() error {
	switch {
	case m.Token == "":
		return errors.New("token is required")
	case len(m.Token) > maxTokenLen:
		return errors.New("token is too long")
	case len(m.SessionID) > maxIDLen:
		return errors.New("session_id is too long")
	case len(m.Name) > maxNameLen:
		return fmt.Errorf("name is longer than %d bytes", maxNameLen)
	}
	if err := validateLanguage(m.Language); err != nil {
		return err
	}
	m.Name = strings.TrimSpace(m.Name)
	return nil
}

func (m *Admit) validate() error { return validateID(m.ParticipantID) }

func (m *Deny) validate() error {
	if len(m.Reason) > maxReasonLen {
		return fmt.Errorf("reason is longer than %d bytes", maxReasonLen)
	}
	return validateID(m.ParticipantID)
}

func (m *Empty) validate() error { return nil }

func (m *Description) validate() error {
	if m.Type != "offer" && m.Type != "answer" {
		return errors.New(`type must be "offer" or "answer"`)
	}
	if m.SDP == "" || len(m.SDP) > maxSDPLen {
		return errors.New("sdp is empty or too long")
	}
	return nil
}

func (m *Candidate) validate() error {
	if len(m.Candidate) > maxCandLen {
		return errors.New("candidate is too long")
	}
	if m.SDPMid != nil && len(*m.SDPMid) > maxIDLen {
		return errors.New("sdp_mid is too long")
	}
	if m.UsernameFragment != nil && len(*m.UsernameFragment) > 256 {
		return errors.New("username_fragment is too long")
	}
	return nil
}

func validateID(id string) error {
	if id == "" {
		return errors.New("participant_id is required")
	}
	if len(id) > maxIDLen {
		return errors.New("participant_id is too long")
	}
	return nil
}
