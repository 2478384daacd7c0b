// Package api holds the REST resources of Assist's HTTP API as Go types: JSON, snake_case,
// shared by the server and the Go client.
package api

import (
	"time"

	"github.com/assist-video/assist/signaling/wire"
)

// Session states.
const (
	SessionWaiting = "waiting"
	SessionActive  = "active"
	SessionEnded   = "ended"
)

// Session is a video assistance session.
type Session struct {
	ID             string        `json:"id"`
	OrganizationID string        `json:"organization_id"`
	State          string        `json:"state"`
	CreatedAt      time.Time     `json:"created_at"`
	EndedAt        *time.Time    `json:"ended_at,omitempty"`
	CustomerURL    string        `json:"customer_url,omitempty"`
	SpecialistURL  string        `json:"specialist_url,omitempty"`
	Participants   []Participant `json:"participants"`
	// HandedOverTo is the specialist the session was last handed over to (POST
	// /v1/sessions/{id}/handover), its specialist from then on.
	HandedOverTo string `json:"handed_over_to,omitempty"`
	// AssignedTo is the specialist a waiting customer's session was transferred to (POST
	// /v1/sessions/{id}/transfer): it comes first in their queue.
	AssignedTo string `json:"assigned_to,omitempty"`
	// MediaNode is the node carrying the session's media (empty until someone first joins).
	MediaNode string `json:"media_node,omitempty"`
	// Timeline is what happened in the session (chat, annotations, snapshots, files,
	// locations, camera commands), oldest first; only on GET /v1/sessions/{id}.
	Timeline []wire.Envelope `json:"timeline,omitempty"`
}

// Participant is one person in a session.
type Participant struct {
	ID       string     `json:"id"`
	Role     string     `json:"role"`
	Name     string     `json:"name"`
	State    string     `json:"state"`
	JoinedAt time.Time  `json:"joined_at"`
	LeftAt   *time.Time `json:"left_at,omitempty"`
	Tracks   []Track    `json:"tracks"`
}

// Track is a media track a participant publishes, with live counters from the SFU.
type Track struct {
	ID               string `json:"id"`
	Kind             string `json:"kind"`
	Codec            string `json:"codec"`
	PacketsReceived  uint64 `json:"packets_received"`
	BytesReceived    uint64 `json:"bytes_received"`
	PacketsForwarded uint64 `json:"packets_forwarded"`
	BytesForwarded   uint64 `json:"bytes_forwarded"`
}

// SessionList is a page of sessions.
type SessionList struct {
	Data       []Session `json:"data"`
	HasMore    bool      `json:"has_more"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// CreateSession is the body of POST /v1/sessions; every field is optional.
type CreateSession struct {
	CustomerName string `json:"customer_name,omitempty"`
}

// Login is the body of POST /v1/auth/login.
type Login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// LoginResult is the reply to a successful sign-in.
type LoginResult struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Appointment states.
const (
	AppointmentBooked    = "booked"
	AppointmentCancelled = "cancelled"
)

// Customer is who an appointment is for.
type Customer struct {
	Name     string `json:"name"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
	Language string `json:"language,omitempty"` // BCP 47, e.g. "en", "fr"
}

// Appointment is a session booked for a time window.
type Appointment struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	State          string    `json:"state"`
	Start          time.Time `json:"start"`
	End            time.Time `json:"end"`
	Customer       Customer  `json:"customer"`
	SpecialistID   string    `json:"specialist_id,omitempty"`
	Queue          string    `json:"queue,omitempty"`
	SessionID      string    `json:"session_id"`
	Revision       int       `json:"revision"`
	CustomerURL    string    `json:"customer_url,omitempty"`
	SpecialistURL  string    `json:"specialist_url,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Notifications are the messages sent to the customer and their delivery state.
	Notifications []Notification `json:"notifications,omitempty"`
}

// Notification is one email or SMS about an appointment.
type Notification struct {
	ID        string    `json:"id"`
	Channel   string    `json:"channel"` // email, sms
	Kind      string    `json:"kind"`    // booked, rescheduled, cancelled, reminder
	To        string    `json:"to"`
	State     string    `json:"state"` // queued, sending, sent, failed
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CreateAppointment is the body of POST /v1/appointments.
type CreateAppointment struct {
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Customer     Customer  `json:"customer"`
	SpecialistID string    `json:"specialist_id,omitempty"`
	Queue        string    `json:"queue,omitempty"`
}

// UpdateAppointment is the body of PATCH /v1/appointments/{id}; absent fields stay.
type UpdateAppointment struct {
	Start        *time.Time `json:"start,omitempty"`
	End          *time.Time `json:"end,omitempty"`
	Customer     *Customer  `json:"customer,omitempty"`
	SpecialistID *string    `json:"specialist_id,omitempty"`
	Queue        *string    `json:"queue,omitempty"`
}

// AppointmentList is a page of appointments, by start time.
type AppointmentList struct {
	Data       []Appointment `json:"data"`
	HasMore    bool          `json:"has_more"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// Links are a session's fresh links, after the old ones were revoked.
type Links struct {
	CustomerURL   string `json:"customer_url"`
	SpecialistURL string `json:"specialist_url"`
}
