package client

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/wire"
)

// PageParams picks one page of a cursor-paginated list.
type PageParams struct {
	// Limit is the page size; 0 lets the server choose (20 for sessions).
	Limit int
	// StartingAfter is the NextCursor of the previous page; empty for the first page.
	StartingAfter string
}

func (p PageParams) values() url.Values {
	q := url.Values{}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.StartingAfter != "" {
		q.Set("starting_after", p.StartingAfter)
	}
	return q
}

// paginate yields every item of a cursor-paginated list, fetching a page at a time; it stops
// at the first error, which it yields.
func paginate[T any](fetch func(cursor string) (items []T, next string, more bool, err error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		cursor := ""
		for {
			items, next, more, err := fetch(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if !more || next == "" || next == cursor {
				return
			}
			cursor = next
		}
	}
}

// Login signs a specialist in to the console; use the token with WithToken.
func (c *Client) Login(ctx context.Context, email, password string) (api.LoginResult, error) {
	var out api.LoginResult
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/auth/login",
		in: api.Login{Email: email, Password: password}}, &out)
	return out, err
}

// CreateSession creates a session with its customer and specialist links.
func (c *Client) CreateSession(ctx context.Context, in api.CreateSession, opts ...CallOption) (api.Session, error) {
	var out api.Session
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions", in: in, opts: opts}, &out)
	return out, err
}

// ListSessions returns one page of the organisation's sessions, newest first.
func (c *Client) ListSessions(ctx context.Context, p PageParams, opts ...CallOption) (api.SessionList, error) {
	var out api.SessionList
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/sessions", query: p.values(), opts: opts}, &out)
	return out, err
}

// AllSessions iterates over every session of the organisation, pageSize at a time (0: the
// server's default).
func (c *Client) AllSessions(ctx context.Context, pageSize int, opts ...CallOption) iter.Seq2[api.Session, error] {
	return paginate(func(cursor string) ([]api.Session, string, bool, error) {
		page, err := c.ListSessions(ctx, PageParams{Limit: pageSize, StartingAfter: cursor}, opts...)
		return page.Data, page.NextCursor, page.HasMore, err
	})
}

// GetSession returns a session with its participants, live track counters and timeline.
func (c *Client) GetSession(ctx context.Context, id string, opts ...CallOption) (api.Session, error) {
	var out api.Session
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/sessions/" + segment(id), opts: opts}, &out)
	return out, err
}

// EndSession ends a session for everyone in it.
func (c *Client) EndSession(ctx context.Context, id string, opts ...CallOption) (api.Session, error) {
	var out api.Session
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions/" + segment(id) + "/end", opts: opts}, &out)
	return out, err
}

// NewLinks revokes a session's links and returns fresh ones.
func (c *Client) NewLinks(ctx context.Context, sessionID string, opts ...CallOption) (api.Links, error) {
	var out api.Links
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions/" + segment(sessionID) + "/links", opts: opts}, &out)
	return out, err
}

// StartRecording starts recording a session's call.
func (c *Client) StartRecording(ctx context.Context, sessionID string, opts ...CallOption) (Recording, error) {
	var out Recording
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions/" + segment(sessionID) + "/recordings", opts: opts}, &out)
	return out, err
}

// StopRecording stops a running recording and returns it with its segments.
func (c *Client) StopRecording(ctx context.Context, sessionID, recordingID string, opts ...CallOption) (Recording, error) {
	var out Recording
	err := c.call(ctx, request{method: http.MethodPost,
		path: "/v1/sessions/" + segment(sessionID) + "/recordings/" + segment(recordingID) + "/stop", opts: opts}, &out)
	return out, err
}

// ListRecordings lists a session's stored recordings, with signed segment URLs.
func (c *Client) ListRecordings(ctx context.Context, sessionID string, opts ...CallOption) ([]Recording, error) {
	var out struct {
		Data []Recording `json:"data"`
	}
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/sessions/" + segment(sessionID) + "/recordings", opts: opts}, &out)
	return out.Data, err
}

// UploadFile shares a file in a session's call. The server takes a session link's token or a
// console token of someone in the call, not an API key: pass it with Bearer unless the client
// was made WithToken.
func (c *Client) UploadFile(ctx context.Context, sessionID, name string, body io.Reader, opts ...CallOption) (wire.FileInfo, error) {
	var out wire.FileInfo
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions/" + segment(sessionID) + "/files",
		query: url.Values{"name": {name}}, body: body, contentType: "application/octet-stream", opts: opts}, &out)
	return out, err
}

// UploadSnapshot uploads a JPEG or PNG photo from the customer's camera; pass the customer
// link's token with Bearer.
func (c *Client) UploadSnapshot(ctx context.Context, sessionID string, body io.Reader, opts ...CallOption) (wire.SnapshotInfo, error) {
	var out wire.SnapshotInfo
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions/" + segment(sessionID) + "/snapshots",
		body: body, contentType: "application/octet-stream", opts: opts}, &out)
	return out, err
}

// Download copies a file, snapshot or recording segment from its signed download URL (as the
// API returns it) into w, and returns its content type. The URL must be on the client's node.
func (c *Client) Download(ctx context.Context, downloadURL string, w io.Writer) (contentType string, err error) {
	path, ok := strings.CutPrefix(downloadURL, c.base)
	if !ok || !strings.HasPrefix(path, "/v1/downloads/") {
		return "", fmt.Errorf("client: %q is not a download URL of %s", downloadURL, c.base)
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: path, accept: "*/*"})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return "", fmt.Errorf("client: download: %w", err)
	}
	return resp.Header.Get("Content-Type"), nil
}

// OpenAPI returns the node's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/openapi.json"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// Health returns nil when the node and its NATS and object storage answer.
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, request{method: http.MethodGet, path: "/healthz"}, nil)
}

// Ready returns nil when the node accepts work (started and not draining).
func (c *Client) Ready(ctx context.Context) error {
	return c.call(ctx, request{method: http.MethodGet, path: "/readyz"}, nil)
}
