package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/assist-video/assist/signaling/api"
)

// VideoMessage is a recorded message a customer left when nobody could take the call or the
// organisation was closed. DownloadURL is a short-lived signed URL of the recording.
type VideoMessage struct {
	ID            string        `json:"id"`
	SessionID     string        `json:"session_id"`
	AppointmentID string        `json:"appointment_id,omitempty"`
	Customer      api.Customer  `json:"customer"`
	Reason        string        `json:"reason"` // queue_timeout or after_hours
	State         string        `json:"state"`  // new or handled
	ContentType   string        `json:"content_type"`
	Size          int64         `json:"size"`
	DurationMS    int64         `json:"duration_ms"`
	AudioOnly     bool          `json:"audio_only"`
	CreatedAt     time.Time     `json:"created_at"`
	HandledAt     *time.Time    `json:"handled_at,omitempty"`
	HandledBy     string        `json:"handled_by,omitempty"`
	DownloadURL   string        `json:"download_url,omitempty"`
	CallBack      *CallBackInfo `json:"call_back,omitempty"`
}

// CallBackInfo is the session opened to call the customer back and where its link went. The
// links themselves are in the reply to CallBack only.
type CallBackInfo struct {
	SessionID     string    `json:"session_id"`
	By            string    `json:"by"`
	At            time.Time `json:"at"`
	Channels      []string  `json:"channels"`
	CustomerURL   string    `json:"customer_url,omitempty"`
	SpecialistURL string    `json:"specialist_url,omitempty"`
	Notifications []struct {
		Channel   string    `json:"channel"`
		To        string    `json:"to"`
		State     string    `json:"state"`
		Attempts  int       `json:"attempts"`
		LastError string    `json:"last_error,omitempty"`
		UpdatedAt time.Time `json:"updated_at"`
	} `json:"notifications,omitempty"`
}

// VideoMessageList is a page of messages, newest first.
type VideoMessageList struct {
	Data       []VideoMessage `json:"data"`
	HasMore    bool           `json:"has_more"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// VideoMessageFilter selects messages: State "new" or "handled" ("" for both), one session's.
type VideoMessageFilter struct {
	State         string
	SessionID     string
	Limit         int
	StartingAfter string
}

// ListVideoMessages returns a page of the organisation's video messages.
func (c *Client) ListVideoMessages(ctx context.Context, f VideoMessageFilter, opts ...CallOption) (VideoMessageList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"state": f.State, "session_id": f.SessionID, "starting_after": f.StartingAfter} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out VideoMessageList
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/video-messages", query: q, opts: opts}, &out)
	return out, err
}

// GetVideoMessage returns one message with a signed download URL.
func (c *Client) GetVideoMessage(ctx context.Context, id string, opts ...CallOption) (VideoMessage, error) {
	var out VideoMessage
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/video-messages/" + segment(id), opts: opts}, &out)
	return out, err
}

// SetVideoMessageState marks a message "handled" (or "new" again).
func (c *Client) SetVideoMessageState(ctx context.Context, id, state string, opts ...CallOption) (VideoMessage, error) {
	var out VideoMessage
	err := c.call(ctx, request{method: http.MethodPatch, path: "/v1/video-messages/" + segment(id),
		in: map[string]string{"state": state}, opts: opts}, &out)
	return out, err
}

// DeleteVideoMessage deletes a message and its recording.
func (c *Client) DeleteVideoMessage(ctx context.Context, id string, opts ...CallOption) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/v1/video-messages/" + segment(id), opts: opts}, nil)
}

// CallBack opens a new session for the customer who left the message and sends them its link
// on the given channels ("email", "sms"; none: every channel they gave).
func (c *Client) CallBack(ctx context.Context, id string, channels []string, opts ...CallOption) (VideoMessage, error) {
	var out VideoMessage
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/video-messages/" + segment(id) + "/call-back",
		in: map[string][]string{"channels": channels}, opts: opts}, &out)
	return out, err
}

// Emergency is a session's emergency flag and the customer's latest location.
type Emergency struct {
	SessionID string     `json:"session_id"`
	Active    bool       `json:"active"`
	Reason    string     `json:"reason,omitempty"`
	FlaggedBy string     `json:"flagged_by,omitempty"`
	FlaggedAt *time.Time `json:"flagged_at,omitempty"`
	ClearedAt *time.Time `json:"cleared_at,omitempty"`
	Location  *struct {
		Latitude   float64   `json:"latitude"`
		Longitude  float64   `json:"longitude"`
		Accuracy   float64   `json:"accuracy"`
		Timestamp  int64     `json:"timestamp"`
		ReceivedAt time.Time `json:"received_at"`
	} `json:"location,omitempty"`
	Updates int `json:"updates"`
}

// SetEmergency flags a session as an emergency (active) or clears the flag.
func (c *Client) SetEmergency(ctx context.Context, sessionID string, active bool, reason string, opts ...CallOption) (Emergency, error) {
	var out Emergency
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions/" + segment(sessionID) + "/emergency",
		in: map[string]any{"active": active, "reason": reason}, opts: opts}, &out)
	return out, err
}

// GetEmergency returns a session's emergency flag and latest location.
func (c *Client) GetEmergency(ctx context.Context, sessionID string, opts ...CallOption) (Emergency, error) {
	var out Emergency
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/sessions/" + segment(sessionID) + "/emergency", opts: opts}, &out)
	return out, err
}
