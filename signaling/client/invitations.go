package client

import (
	"context"
	"net/http"
	"time"
)

// Invitation is someone asked into a live session: a colleague (kind "colleague", who joins from
// their console), an outside expert ("expert", who joins by URL, a one-off link) or a colleague
// the session is handed over to ("handover"). State is pending, accepted, revoked or expired.
type Invitation struct {
	ID            string     `json:"id"`
	SessionID     string     `json:"session_id"`
	Kind          string     `json:"kind"`
	State         string     `json:"state"`
	SpecialistID  string     `json:"specialist_id,omitempty"`
	Name          string     `json:"name,omitempty"`
	Email         string     `json:"email,omitempty"`
	Phone         string     `json:"phone,omitempty"`
	InvitedBy     string     `json:"invited_by"`
	InvitedByName string     `json:"invited_by_name,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	AcceptedAt    *time.Time `json:"accepted_at,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	ParticipantID string     `json:"participant_id,omitempty"`
	// URL is an expert's link, in the reply that creates it only.
	URL string `json:"url,omitempty"`
	// Notifications: where an expert's link was sent by email or SMS, and how that went.
	Notifications []LinkDelivery `json:"notifications,omitempty"`
}

// LinkDelivery is one email or SMS that brings someone their link: State is queued, sending,
// sent, failed or skipped (LastError says why).
type LinkDelivery struct {
	Channel   string    `json:"channel"`
	To        string    `json:"to"`
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CreateInvitation is what to invite: Kind "colleague" with SpecialistID, or Kind "expert" with
// an optional name, email, phone and lifetime (60 to 86400 seconds; default two hours). An
// expert's link is sent to the email address and phone given, in Language (English by default).
type CreateInvitation struct {
	Kind             string `json:"kind"`
	SpecialistID     string `json:"specialist_id,omitempty"`
	Name             string `json:"name,omitempty"`
	Email            string `json:"email,omitempty"`
	Phone            string `json:"phone,omitempty"`
	ExpiresInSeconds int    `json:"expires_in_seconds,omitempty"`
	Language         string `json:"language,omitempty"`
}

// Handover is the reply to HandOver.
type Handover struct {
	SessionID    string     `json:"session_id"`
	HandedOverTo string     `json:"handed_over_to"`
	Invitation   Invitation `json:"invitation"`
}

type invitationList struct {
	Data []Invitation `json:"data"`
}

// Invite asks a colleague or an outside expert into a live session.
func (c *Client) Invite(ctx context.Context, sessionID string, in CreateInvitation, opts ...CallOption) (Invitation, error) {
	var out Invitation
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions/" + segment(sessionID) + "/invitations", in: in, opts: opts}, &out)
	return out, err
}

// Invitations lists a session's invitations, oldest first.
func (c *Client) Invitations(ctx context.Context, sessionID string, opts ...CallOption) ([]Invitation, error) {
	var out invitationList
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/sessions/" + segment(sessionID) + "/invitations", opts: opts}, &out)
	return out.Data, err
}

// RevokeInvitation withdraws an invitation: an expert's link stops working and an expert in
// the call is taken out of it.
func (c *Client) RevokeInvitation(ctx context.Context, sessionID, invitationID string, opts ...CallOption) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/v1/sessions/" + segment(sessionID) + "/invitations/" + segment(invitationID), opts: opts}, nil)
}

// HandOver hands a session over to a colleague; the customer stays connected.
func (c *Client) HandOver(ctx context.Context, sessionID, specialistID string, opts ...CallOption) (Handover, error) {
	var out Handover
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions/" + segment(sessionID) + "/handover",
		in: map[string]string{"specialist_id": specialistID}, opts: opts}, &out)
	return out, err
}
