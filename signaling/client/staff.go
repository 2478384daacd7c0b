package client

import (
	"context"
	"net/http"
	"time"
)

// PresenceEntry is one specialist's presence: Status is what colleagues see (available, busy,
// away or offline), Manual what the specialist chose.
type PresenceEntry struct {
	SpecialistID string `json:"specialist_id"`
	Name         string `json:"name"`
	Status       string `json:"status"`
	Manual       string `json:"manual"`
	InSession    bool   `json:"in_session"`
	Since        string `json:"since"`
}

// Presence lists every specialist of the organisation with their presence.
func (c *Client) Presence(ctx context.Context, opts ...CallOption) ([]PresenceEntry, error) {
	var out struct {
		Data []PresenceEntry `json:"data"`
	}
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/presence", opts: opts}, &out)
	return out.Data, err
}

// WaitingCustomer is one customer waiting in one of the organisation's sessions.
type WaitingCustomer struct {
	SessionID      string `json:"session_id"`
	ParticipantID  string `json:"participant_id"`
	Name           string `json:"name"`
	Position       int    `json:"position"`
	Since          string `json:"since"`
	Kind           string `json:"kind"` // appointment or ad_hoc
	Diagnostics    string `json:"diagnostics,omitempty"`
	Language       string `json:"language,omitempty"`
	AssignedTo     string `json:"assigned_to,omitempty"`
	AssignedToName string `json:"assigned_to_name,omitempty"`
	Reconnecting   bool   `json:"reconnecting,omitempty"`
}

// Queue is everyone waiting in the organisation's sessions now, by place in the line.
func (c *Client) Queue(ctx context.Context, opts ...CallOption) ([]WaitingCustomer, error) {
	var out struct {
		Waiting []WaitingCustomer `json:"waiting"`
	}
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/queue", opts: opts}, &out)
	return out.Waiting, err
}

// Assignment is a session's assigned specialist after a transfer.
type Assignment struct {
	SessionID  string     `json:"session_id"`
	AssignedTo string     `json:"assigned_to"`
	AssignedBy string     `json:"assigned_by"`
	AssignedAt *time.Time `json:"assigned_at"`
}

// TransferSession assigns a session whose customer is waiting to a specialist of the
// organisation; they are told on their console and see it first in their queue.
func (c *Client) TransferSession(ctx context.Context, sessionID, specialistID string, opts ...CallOption) (Assignment, error) {
	var out Assignment
	in := struct {
		SpecialistID string `json:"specialist_id"`
	}{specialistID}
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions/" + segment(sessionID) + "/transfer", in: in, opts: opts}, &out)
	return out, err
}
