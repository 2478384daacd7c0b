package client

import "time"

// The types below are resources the server defines privately today (in package signaling or
// rooms), or resources of the admin API the server does not offer yet. They mirror the JSON the
// server sends and belong in package signaling/api, shared by both sides.

// Recording is a session's recording, with its stored WebM segments.
type Recording struct {
	ID        string             `json:"id"`
	SessionID string             `json:"session_id"`
	State     string             `json:"state"` // recording, complete, interrupted
	StartedAt time.Time          `json:"started_at"`
	EndedAt   *time.Time         `json:"ended_at,omitempty"`
	Segments  []RecordingSegment `json:"segments"`
	// UploadsBehind counts the node's segments still waiting for object storage.
	UploadsBehind int `json:"uploads_behind"`
}

// RecordingSegment is one participant's WebM file of a recording.
type RecordingSegment struct {
	ParticipantID string    `json:"participant_id"`
	Seq           int       `json:"seq"`
	StartedAt     time.Time `json:"started_at"`
	DurationMS    int64     `json:"duration_ms"`
	Size          int64     `json:"size"`
	URL           string    `json:"url"` // signed for 10 minutes
}

// WebhookEndpoint is a URL that receives an organisation's events.
type WebhookEndpoint struct {
	ID      string   `json:"id"`
	URL     string   `json:"url"`
	Events  []string `json:"events"`
	Enabled bool     `json:"enabled"`
	// Secret signs the deliveries; the server shows it only when the endpoint is created or
	// its secret rotated.
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateWebhook is the body of POST /v1/webhooks.
type CreateWebhook struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// WebhookDelivery is one event sent (or being sent) to an endpoint.
type WebhookDelivery struct {
	ID             string     `json:"id"`
	EventID        string     `json:"event_id"`
	EndpointID     string     `json:"endpoint_id"`
	OrganizationID string     `json:"organization_id"`
	Type           string     `json:"type"`
	State          string     `json:"state"`
	Attempts       int        `json:"attempts"`
	LastStatus     int        `json:"last_status,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	NextAttemptAt  time.Time  `json:"next_attempt_at,omitzero"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
}

// AuditEvent is one entry of an organisation's audit trail.
type AuditEvent struct {
	ID         string     `json:"id"`
	Time       time.Time  `json:"time"`
	OrgID      string     `json:"org_id"`
	Actor      AuditActor `json:"actor"`
	Action     string     `json:"action"`
	SessionID  string     `json:"session_id,omitempty"`
	Target     string     `json:"target,omitempty"`
	RemoteAddr string     `json:"remote_addr,omitempty"`
	UserAgent  string     `json:"user_agent,omitempty"`
	Detail     string     `json:"detail,omitempty"`
}

// AuditActor is who did what an audit event records.
type AuditActor struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// AuditEventList is a page of audit events; NextCursor is empty on the last page.
type AuditEventList struct {
	Data       []AuditEvent `json:"data"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// ---- the admin API (proposed; see the methods in admin.go) ----

// Organization is a tenant: its sessions, specialists and API keys are its own.
type Organization struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// StorageRegion is where its recordings, snapshots and files are stored ("default" or a
	// region of the node's storage-regions setting).
	StorageRegion string `json:"storage_region,omitempty"`
}

// CreateOrganization is the body of POST /v1/orgs.
type CreateOrganization struct {
	Name          string `json:"name"`
	StorageRegion string `json:"storage_region,omitempty"` // default: the default store
}

// OrganizationList is a page of organisations.
type OrganizationList struct {
	Data       []Organization `json:"data"`
	HasMore    bool           `json:"has_more"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// Specialist is a person who signs in to the console.
type Specialist struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	Email          string    `json:"email"`
	Name           string    `json:"name"`
	Role           string    `json:"role"`
	CreatedAt      time.Time `json:"created_at"`
	// Password is set only in the reply to a create that asked the server to choose one.
	Password string `json:"password,omitempty"`
}

// CreateSpecialist is the body of POST /v1/specialists. Without a password the server
// generates one and returns it once.
type CreateSpecialist struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password,omitempty"`
	// Role is specialist (the default), supervisor or admin.
	Role string `json:"role,omitempty"`
	// OrganizationID is for platform administrators; others create in their own organisation.
	OrganizationID string `json:"organization_id,omitempty"`
}

// SpecialistList is a page of specialists.
type SpecialistList struct {
	Data       []Specialist `json:"data"`
	HasMore    bool         `json:"has_more"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// APIKey is an organisation's key for the REST API. The server keeps only a hash: Key, the
// secret itself, is in the reply to the create and nowhere else.
type APIKey struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	Name           string    `json:"name"`
	Scopes         []string  `json:"scopes"`
	CreatedAt      time.Time `json:"created_at"`
	Key            string    `json:"key,omitempty"`
}

// CreateAPIKey is the body of POST /v1/api-keys.
type CreateAPIKey struct {
	Name string `json:"name"`
	// Scopes limit what the key may do; none asks for the defaults (everything in the
	// organisation). Nobody grants a scope they do not hold.
	Scopes []string `json:"scopes,omitempty"`
	// OrganizationID is for platform administrators; others create in their own organisation.
	OrganizationID string `json:"organization_id,omitempty"`
}

// APIKeyList is a page of API keys.
type APIKeyList struct {
	Data       []APIKey `json:"data"`
	HasMore    bool     `json:"has_more"`
	NextCursor string   `json:"next_cursor,omitempty"`
}
