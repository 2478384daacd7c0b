package client

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/assist-video/assist/signaling/api"
)

// ---- appointments ----

// AppointmentFilter picks appointments and a page of them; zero fields do not filter.
type AppointmentFilter struct {
	State        string // api.AppointmentBooked or api.AppointmentCancelled
	SpecialistID string
	From, To     time.Time // the appointment's start
	PageParams
}

func (f AppointmentFilter) values() url.Values {
	q := f.PageParams.values()
	setNonEmpty(q, "state", f.State)
	setNonEmpty(q, "specialist_id", f.SpecialistID)
	setTime(q, "from", f.From)
	setTime(q, "to", f.To)
	return q
}

// CreateAppointment books a session for a time window and notifies the customer.
func (c *Client) CreateAppointment(ctx context.Context, in api.CreateAppointment, opts ...CallOption) (api.Appointment, error) {
	var out api.Appointment
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/appointments", in: in, opts: opts}, &out)
	return out, err
}

// ListAppointments returns one page of appointments, by start time.
func (c *Client) ListAppointments(ctx context.Context, f AppointmentFilter, opts ...CallOption) (api.AppointmentList, error) {
	var out api.AppointmentList
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/appointments", query: f.values(), opts: opts}, &out)
	return out, err
}

// AllAppointments iterates over every appointment the filter picks; f.StartingAfter is where
// it starts.
func (c *Client) AllAppointments(ctx context.Context, f AppointmentFilter, opts ...CallOption) iter.Seq2[api.Appointment, error] {
	start := f.StartingAfter
	return paginate(func(cursor string) ([]api.Appointment, string, bool, error) {
		f.StartingAfter = cursor
		if cursor == "" {
			f.StartingAfter = start
		}
		page, err := c.ListAppointments(ctx, f, opts...)
		return page.Data, page.NextCursor, page.HasMore, err
	})
}

// GetAppointment returns an appointment with fresh links and its notifications.
func (c *Client) GetAppointment(ctx context.Context, id string, opts ...CallOption) (api.Appointment, error) {
	var out api.Appointment
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/appointments/" + segment(id), opts: opts}, &out)
	return out, err
}

// UpdateAppointment changes the fields set in in (moving the window tells the customer).
func (c *Client) UpdateAppointment(ctx context.Context, id string, in api.UpdateAppointment, opts ...CallOption) (api.Appointment, error) {
	var out api.Appointment
	err := c.call(ctx, request{method: http.MethodPatch, path: "/v1/appointments/" + segment(id), in: in, opts: opts}, &out)
	return out, err
}

// CancelAppointment cancels an appointment and ends its session.
func (c *Client) CancelAppointment(ctx context.Context, id string, opts ...CallOption) (api.Appointment, error) {
	var out api.Appointment
	err := c.call(ctx, request{method: http.MethodDelete, path: "/v1/appointments/" + segment(id), opts: opts}, &out)
	return out, err
}

// ---- webhooks ----

// CreateWebhook registers an endpoint; the reply carries its signing secret, shown only now.
func (c *Client) CreateWebhook(ctx context.Context, in CreateWebhook, opts ...CallOption) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/webhooks", in: in, opts: opts}, &out)
	return out, err
}

// ListWebhooks lists the organisation's endpoints (without secrets).
func (c *Client) ListWebhooks(ctx context.Context, opts ...CallOption) ([]WebhookEndpoint, error) {
	var out struct {
		Data []WebhookEndpoint `json:"data"`
	}
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/webhooks", opts: opts}, &out)
	return out.Data, err
}

// GetWebhook returns one endpoint (without its secret).
func (c *Client) GetWebhook(ctx context.Context, id string, opts ...CallOption) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/webhooks/" + segment(id), opts: opts}, &out)
	return out, err
}

// DeleteWebhook removes an endpoint.
func (c *Client) DeleteWebhook(ctx context.Context, id string, opts ...CallOption) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/v1/webhooks/" + segment(id), opts: opts}, nil)
}

// RotateWebhookSecret gives an endpoint a new signing secret and returns it.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string, opts ...CallOption) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/webhooks/" + segment(id) + "/rotate-secret", opts: opts}, &out)
	return out, err
}

// ListWebhookDeliveries returns an endpoint's latest deliveries (at most 100).
func (c *Client) ListWebhookDeliveries(ctx context.Context, endpointID string, opts ...CallOption) ([]WebhookDelivery, error) {
	var out struct {
		Data []WebhookDelivery `json:"data"`
	}
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/webhooks/" + segment(endpointID) + "/deliveries", opts: opts}, &out)
	return out.Data, err
}

// Redeliver queues a delivery to be sent again.
func (c *Client) Redeliver(ctx context.Context, deliveryID string, opts ...CallOption) error {
	return c.call(ctx, request{method: http.MethodPost, path: "/v1/webhook-deliveries/" + segment(deliveryID) + "/redeliver", opts: opts}, nil)
}

// ---- audit ----

// AuditQuery picks audit events and a page of them; zero fields do not filter.
type AuditQuery struct {
	Action    string
	ActorID   string
	SessionID string
	From, To  time.Time
	// Limit is the page size (1 to 1000; 0: the server's 100). For an export it bounds the
	// number of events.
	Limit         int
	StartingAfter string
}

func (q AuditQuery) values() url.Values {
	v := url.Values{}
	setNonEmpty(v, "action", q.Action)
	setNonEmpty(v, "actor_id", q.ActorID)
	setNonEmpty(v, "session_id", q.SessionID)
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	setNonEmpty(v, "starting_after", q.StartingAfter)
	return v
}

// QueryAuditEvents returns one page of the organisation's audit trail, oldest first.
func (c *Client) QueryAuditEvents(ctx context.Context, q AuditQuery, opts ...CallOption) (AuditEventList, error) {
	var out AuditEventList
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/audit-events", query: q.values(), opts: opts}, &out)
	return out, err
}

// AllAuditEvents iterates over every audit event the query picks, q.Limit at a time.
func (c *Client) AllAuditEvents(ctx context.Context, q AuditQuery, opts ...CallOption) iter.Seq2[AuditEvent, error] {
	start := q.StartingAfter
	return paginate(func(cursor string) ([]AuditEvent, string, bool, error) {
		q.StartingAfter = cursor
		if cursor == "" {
			q.StartingAfter = start
		}
		page, err := c.QueryAuditEvents(ctx, q, opts...)
		return page.Data, page.NextCursor, page.NextCursor != "", err
	})
}

// ExportFormat is a file format of the audit export.
type ExportFormat string

// Audit export formats.
const (
	ExportNDJSON ExportFormat = "ndjson" // one JSON AuditEvent per line
	ExportCSV    ExportFormat = "csv"
)

// ExportAuditEvents streams the audit events the query picks into w, as NDJSON or CSV.
func (c *Client) ExportAuditEvents(ctx context.Context, q AuditQuery, format ExportFormat, w io.Writer, opts ...CallOption) error {
	v := q.values()
	v.Set("format", string(format))
	accept := "application/x-ndjson"
	if format == ExportCSV {
		accept = "text/csv"
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/audit-events", query: v, accept: accept, opts: opts})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("client: audit export: %w", err)
	}
	return nil
}

func setNonEmpty(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

func setTime(q url.Values, key string, t time.Time) {
	if !t.IsZero() {
		q.Set(key, t.UTC().Format(time.RFC3339))
	}
}
