package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// QualityFigure is one measure over the samples that have it.
type QualityFigure struct {
	Count  int     `json:"count"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Mean   float64 `json:"mean"`
}

// QualitySummary summarises call quality samples, measure by measure.
type QualitySummary struct {
	Samples     int           `json:"samples"`
	RTTMs       QualityFigure `json:"rtt_ms"`
	JitterMs    QualityFigure `json:"jitter_ms"`
	LossPct     QualityFigure `json:"loss_pct"`
	SendLossPct QualityFigure `json:"send_loss_pct"`
	SendKbps    QualityFigure `json:"send_kbps"`
	ReceiveKbps QualityFigure `json:"receive_kbps"`
	FrameRate   QualityFigure `json:"frame_rate"`
}

// QualitySample is one participant's call quality over one interval, from their side; nil
// figures were not measured. Source is "sfu" (the server's view) or "client" (the page's).
type QualitySample struct {
	At            time.Time      `json:"at"`
	SessionID     string         `json:"session_id"`
	ParticipantID string         `json:"participant_id"`
	Role          string         `json:"role,omitempty"`
	Source        string         `json:"source"`
	IntervalMs    int            `json:"interval_ms"`
	RTTMs         *float64       `json:"rtt_ms,omitempty"`
	JitterMs      *float64       `json:"jitter_ms,omitempty"`
	LossPct       *float64       `json:"loss_pct,omitempty"`
	SendLossPct   *float64       `json:"send_loss_pct,omitempty"`
	SendKbps      *float64       `json:"send_kbps,omitempty"`
	ReceiveKbps   *float64       `json:"receive_kbps,omitempty"`
	FrameRate     *float64       `json:"frame_rate,omitempty"`
	Tracks        []TrackQuality `json:"tracks,omitempty"`
}

// TrackQuality is one track of a server sample: sent ("send") or received ("receive").
type TrackQuality struct {
	TrackID     string   `json:"track_id"`
	Kind        string   `json:"kind"`
	Direction   string   `json:"direction"`
	PublisherID string   `json:"publisher_id,omitempty"`
	Kbps        *float64 `json:"kbps,omitempty"`
	LossPct     *float64 `json:"loss_pct,omitempty"`
	JitterMs    *float64 `json:"jitter_ms,omitempty"`
	RTTMs       *float64 `json:"rtt_ms,omitempty"`
}

// SessionQuality is a session's call quality samples and their summary.
type SessionQuality struct {
	SessionID string                    `json:"session_id"`
	Summary   QualitySummary            `json:"summary"`
	BySource  map[string]QualitySummary `json:"by_source"`
	Samples   []QualitySample           `json:"samples"`
}

// SessionQuality returns a session's call quality; source "" for all samples, or "sfu" or
// "client" for one side's.
func (c *Client) SessionQuality(ctx context.Context, sessionID, source string, opts ...CallOption) (SessionQuality, error) {
	var out SessionQuality
	q := url.Values{}
	if source != "" {
		q.Set("source", source)
	}
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/sessions/" + segment(sessionID) + "/quality", query: q, opts: opts}, &out)
	return out, err
}
