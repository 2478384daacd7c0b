package client

import (
	"context"
	"iter"
	"net/http"
)

// The admin API: organisations, specialists and API keys. The server does not offer these
// routes yet; the methods follow the shapes proposed for it, and until then they return a
// *Problem with status 404 ("no such API route").
//
// Organisations are the platform administrator's (an API key with platform scope);
// specialists and API keys are managed within the caller's own organisation.

// CreateOrganization creates a tenant.
func (c *Client) CreateOrganization(ctx context.Context, in CreateOrganization, opts ...CallOption) (Organization, error) {
	var out Organization
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/orgs", in: in, opts: opts}, &out)
	return out, err
}

// ListOrganizations returns one page of organisations.
func (c *Client) ListOrganizations(ctx context.Context, p PageParams, opts ...CallOption) (OrganizationList, error) {
	var out OrganizationList
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/orgs", query: p.values(), opts: opts}, &out)
	return out, err
}

// AllOrganizations iterates over every organisation.
func (c *Client) AllOrganizations(ctx context.Context, pageSize int, opts ...CallOption) iter.Seq2[Organization, error] {
	return paginate(func(cursor string) ([]Organization, string, bool, error) {
		page, err := c.ListOrganizations(ctx, PageParams{Limit: pageSize, StartingAfter: cursor}, opts...)
		return page.Data, page.NextCursor, page.HasMore, err
	})
}

// CreateSpecialist adds a person who can sign in to the console.
func (c *Client) CreateSpecialist(ctx context.Context, in CreateSpecialist, opts ...CallOption) (Specialist, error) {
	var out Specialist
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/specialists", in: in, opts: opts}, &out)
	return out, err
}

// ListSpecialists returns one page of the organisation's specialists.
func (c *Client) ListSpecialists(ctx context.Context, p PageParams, opts ...CallOption) (SpecialistList, error) {
	var out SpecialistList
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/specialists", query: p.values(), opts: opts}, &out)
	return out, err
}

// AllSpecialists iterates over every specialist of the organisation.
func (c *Client) AllSpecialists(ctx context.Context, pageSize int, opts ...CallOption) iter.Seq2[Specialist, error] {
	return paginate(func(cursor string) ([]Specialist, string, bool, error) {
		page, err := c.ListSpecialists(ctx, PageParams{Limit: pageSize, StartingAfter: cursor}, opts...)
		return page.Data, page.NextCursor, page.HasMore, err
	})
}

// CreateAPIKey issues a key; the reply's Key is the secret, shown only now.
func (c *Client) CreateAPIKey(ctx context.Context, in CreateAPIKey, opts ...CallOption) (APIKey, error) {
	var out APIKey
	err := c.call(ctx, request{method: http.MethodPost, path: "/v1/api-keys", in: in, opts: opts}, &out)
	return out, err
}

// ListAPIKeys returns one page of the organisation's keys (without secrets).
func (c *Client) ListAPIKeys(ctx context.Context, p PageParams, opts ...CallOption) (APIKeyList, error) {
	var out APIKeyList
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/api-keys", query: p.values(), opts: opts}, &out)
	return out, err
}

// AllAPIKeys iterates over every key of the organisation.
func (c *Client) AllAPIKeys(ctx context.Context, pageSize int, opts ...CallOption) iter.Seq2[APIKey, error] {
	return paginate(func(cursor string) ([]APIKey, string, bool, error) {
		page, err := c.ListAPIKeys(ctx, PageParams{Limit: pageSize, StartingAfter: cursor}, opts...)
		return page.Data, page.NextCursor, page.HasMore, err
	})
}

// RevokeAPIKey deletes a key; requests bearing it fail from then on.
func (c *Client) RevokeAPIKey(ctx context.Context, id string, opts ...CallOption) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/v1/api-keys/" + segment(id), opts: opts}, nil)
}
