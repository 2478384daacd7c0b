// Package problem writes RFC 9457 problem details (application/problem+json) for API errors.
package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem document.
type Details struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// typeBase prefixes the type URIs of Assist's problems; they name the problem, they are not fetched.
const typeBase = "https://assist.dev/problems/"

// Write sends a problem with the given status; kind is a short slug such as "not-found".
func Write(w http.ResponseWriter, r *http.Request, status int, kind, detail string) {
	d := Details{
		Type:   typeBase + kind,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	}
	if r != nil {
		d.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(d)
}
