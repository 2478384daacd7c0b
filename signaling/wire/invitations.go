package wire

import "time"

// Bringing people into a session, and handing it over. These messages are server-only: the
// specialist invites and hands over through the HTTP API (POST /v1/sessions/{id}/invitations,
// POST /v1/sessions/{id}/handover), and the server tells the people concerned.

// Server-only types.
const (
	// TypeInvitation goes to an invited colleague's console (staff socket): join this session.
	TypeInvitation Type = "invitation"
	// TypeHandover is a kept timeline entry, to everyone in the call: the session has a new
	// specialist.
	TypeHandover Type = "handover"
)

// Invitation tells a colleague that they are asked into a session (kind colleague) or handed it
// (kind handover). The console joins the session with its own token and session_id.
type Invitation struct {
	InvitationID  string    `json:"invitation_id"`
	SessionID     string    `json:"session_id"`
	Kind          string    `json:"kind"`
	InvitedBy     string    `json:"invited_by"`
	InvitedByName string    `json:"invited_by_name,omitempty"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// Specialist names a specialist in a handover.
type Specialist struct {
	SpecialistID string `json:"specialist_id"`
	Name         string `json:"name"`
}

// Handover is the timeline entry of a handover: from one specialist to another.
type Handover struct {
	Meta
	FromSpecialist Specialist `json:"from_specialist"`
	ToSpecialist   Specialist `json:"to_specialist"`
}
