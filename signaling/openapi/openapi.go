// Package openapi holds the OpenAPI 3.1 description of Assist's REST API, served at
// /v1/openapi.json and kept true by a test that compares it with the server's routes.
package openapi

import (
	_ "embed"
	"encoding/json"
	"sort"
	"strings"
)

//go:embed openapi.json
var Document []byte

// Operations lists the document's operations as "METHOD /path" (path parameters as {name}).
func Operations() ([]string, error) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(Document, &doc); err != nil {
		return nil, err
	}
	var ops []string
	for path, methods := range doc.Paths {
		for method := range methods {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(ops)
	return ops, nil
}
