package signaling

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/assist-video/assist/signaling/openapi"
)

// TestOpenAPIMatchesTheRoutes keeps /v1/openapi.json true: every /v1 route the server registers
// is documented, and every documented operation is served.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	ts := newTestServer(t)
	var served []string
	for _, p := range ts.patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/v1/") || path == "/v1/" {
			continue
		}
		served = append(served, method+" "+path)
	}
	slices.Sort(served)
	documented, err := openapi.Operations()
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	for _, op := range served {
		if !slices.Contains(documented, op) {
			t.Errorf("served but not documented: %s", op)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) {
			t.Errorf("documented but not served: %s", op)
		}
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	resp := ts.do(t, "GET", "/v1/openapi.json", "", nil, &doc)
	if resp.StatusCode != 200 || doc.OpenAPI != "3.1.0" {
		t.Fatalf("GET /v1/openapi.json: %d %q", resp.StatusCode, doc.OpenAPI)
	}
	if !json.Valid(openapi.Document) {
		t.Fatal("openapi.json is not valid JSON")
	}
}
