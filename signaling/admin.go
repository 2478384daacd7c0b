package signaling

import (
	"cmp"
	"errors"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/problem"
)

// Who may call what. Every authenticated route names the permission it needs; a route missing
// from this table is refused to everyone (fail closed), and a test checks the table covers
// every route. API keys hold permissions as scopes; specialists hold them through their role.

// permAnyone is the permission every authenticated caller of the organisation has.
const permAnyone = ""

var routePermissions = map[string]string{
	"POST /v1/sessions":                            rooms.ScopeSessions,
	"GET /v1/sessions":                             rooms.ScopeSessions,
	"GET /v1/sessions/{id}":                        rooms.ScopeSessions,
	"DELETE /v1/sessions/{id}":                     rooms.ScopeSessionsDelete,
	"POST /v1/sessions/{id}/end":                   rooms.ScopeSessions,
	"POST /v1/sessions/{id}/links":                 rooms.ScopeSessions,
	"POST /v1/sessions/{id}/invitations":           rooms.ScopeSessions,
	"GET /v1/sessions/{id}/invitations":            rooms.ScopeSessions,
	"DELETE /v1/sessions/{id}/invitations/{iid}":   rooms.ScopeSessions,
	"POST /v1/sessions/{id}/handover":              rooms.ScopeSessions,
	"GET /v1/invitations":                          permAnyone,
	"POST /v1/sessions/{id}/recordings":            rooms.ScopeSessions,
	"GET /v1/sessions/{id}/recordings":             rooms.ScopeSessions,
	"GET /v1/sessions/{id}/quality":                rooms.ScopeSessions,
	"POST /v1/sessions/{id}/recordings/{rid}/stop": rooms.ScopeSessions,
	"GET /v1/organization":                         permAnyone,
	"PATCH /v1/organization":                       rooms.ScopeAdmin,
	"GET /v1/organization/identity-provider":       rooms.ScopeAdmin,
	"PUT /v1/organization/identity-provider":       rooms.ScopeAdmin,
	"DELETE /v1/organization/identity-provider":    rooms.ScopeAdmin,
	"POST /v1/appointments":                        rooms.ScopeAppointments,
	"GET /v1/appointments":                         rooms.ScopeAppointments,
	"GET /v1/appointments/{id}":                    rooms.ScopeAppointments,
	"PATCH /v1/appointments/{id}":                  rooms.ScopeAppointments,
	"DELETE /v1/appointments/{id}":                 rooms.ScopeAppointments,
	"POST /v1/webhooks":                            rooms.ScopeWebhooks,
	"GET /v1/webhooks":                             rooms.ScopeWebhooks,
	"GET /v1/webhooks/{id}":                        rooms.ScopeWebhooks,
	"DELETE /v1/webhooks/{id}":                     rooms.ScopeWebhooks,
	"POST /v1/webhooks/{id}/rotate-secret":         rooms.ScopeWebhooks,
	"GET /v1/webhooks/{id}/deliveries":             rooms.ScopeWebhooks,
	"POST /v1/webhook-deliveries/{id}/redeliver":   rooms.ScopeWebhooks,
	"GET /v1/notification-settings":                rooms.ScopeAdmin,
	"PUT /v1/notification-settings":                rooms.ScopeAdmin,
	"DELETE /v1/notification-settings":             rooms.ScopeAdmin,
	"GET /v1/organization/seat-report":             rooms.ScopeAudit,
	"PATCH /v1/orgs/{id}":                          rooms.ScopePlatform,
	"GET /v1/analytics":                            rooms.ScopeAudit,
	"GET /v1/audit-events":                         rooms.ScopeAudit,
	"GET /v1/specialists":                          permAnyone,
	"POST /v1/specialists":                         rooms.ScopeAdmin,
	"GET /v1/api-keys":                             rooms.ScopeAdmin,
	"POST /v1/api-keys":                            rooms.ScopeAdmin,
	"DELETE /v1/api-keys/{id}":                     rooms.ScopeAdmin,
	"GET /v1/orgs":                                 rooms.ScopePlatform,
	"POST /v1/orgs":                                rooms.ScopePlatform,
	"POST /v1/signing-keys/rotate":                 rooms.ScopePlatform,
	"GET /v1/presence":                             rooms.ScopeSessions,
	"PUT /v1/presence/me":                          permConsole,
	"GET /v1/team/messages":                        permConsole,
	"POST /v1/team/messages":                       permConsole,
	"PUT /v1/team/read":                            permConsole,
	"GET /v1/queue":                                rooms.ScopeSessions,
	"POST /v1/sessions/{id}/transfer":              rooms.ScopeSessions,
	"GET /v1/video-messages":                       rooms.ScopeSessions,
	"GET /v1/video-messages/{id}":                  rooms.ScopeSessions,
	"PATCH /v1/video-messages/{id}":                rooms.ScopeSessions,
	"DELETE /v1/video-messages/{id}":               rooms.ScopeSessionsDelete,
	"POST /v1/video-messages/{id}/call-back":       rooms.ScopeSessions,
	"GET /v1/sessions/{id}/emergency":              rooms.ScopeSessions,
	"POST /v1/sessions/{id}/emergency":             rooms.ScopeSessions,
}

// rolePermissions are what each staff role may do.
var rolePermissions = map[rooms.StaffRole][]string{
	rooms.StaffSpecialist: {rooms.ScopeSessions, rooms.ScopeAppointments},
	rooms.StaffSupervisor: {rooms.ScopeSessions, rooms.ScopeAppointments, rooms.ScopeAudit},
	rooms.StaffAdmin: {rooms.ScopeSessions, rooms.ScopeSessionsDelete, rooms.ScopeAppointments,
		rooms.ScopeAudit, rooms.ScopeWebhooks, rooms.ScopeAdmin},
}

// may says whether the caller holds a permission.
func (c caller) may(perm string) bool {
	return perm == permAnyone || perm == permConsole && c.SpecialistID != "" || slices.Contains(c.Perms, perm)
}

// permitted checks the route's permission for an authenticated caller and answers 403 if not.
func (s *Server) permitted(w http.ResponseWriter, r *http.Request, c caller) bool {
	perm, known := routePermissions[r.Pattern]
	switch {
	case !known:
		s.log.Error("route without a permission", "route", r.Pattern)
		problem.Write(w, r, http.StatusForbidden, "forbidden", "this route is not open to anyone")
		return false
	case !c.may(perm):
		problem.Write(w, r, http.StatusForbidden, "forbidden", "this needs the "+strconv.Quote(perm)+" permission")
		return false
	}
	return true
}

// callerForKey is an API key's caller.
func callerForKey(key *rooms.APIKey) caller {
	return caller{OrgID: key.OrgID, KeyName: key.Name + ":" + key.Hash[:12], Perms: key.EffectiveScopes()}
}

// callerForSpecialist is a signed-in specialist's caller, with their current role.
func callerForSpecialist(sp *rooms.Specialist) caller {
	return caller{OrgID: sp.OrgID, SpecialistID: sp.ID, Role: sp.EffectiveRole(), Perms: rolePermissions[sp.EffectiveRole()]}
}

// ---- specialists ----

type specialistView struct {
	ID             string          `json:"id"`
	OrganizationID string          `json:"organization_id"`
	Email          string          `json:"email"`
	Name           string          `json:"name"`
	Role           rooms.StaffRole `json:"role"`
	CreatedAt      time.Time       `json:"created_at"`
	Password       string          `json:"password,omitempty"` // only when the server chose it
}

type specialistList struct {
	Data       []specialistView `json:"data"`
	HasMore    bool             `json:"has_more"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

type createSpecialist struct {
	Email          string          `json:"email"`
	Name           string          `json:"name"`
	Password       string          `json:"password"`
	Role           rooms.StaffRole `json:"role"`
	OrganizationID string          `json:"organization_id"`
}

const minPasswordLength = 10

func viewSpecialist(sp *rooms.Specialist) specialistView {
	return specialistView{ID: sp.ID, OrganizationID: sp.OrgID, Email: sp.Email, Name: sp.Name,
		Role: sp.EffectiveRole(), CreatedAt: sp.CreatedAt}
}

// targetOrg is the organisation a create acts on: the caller's, or with the platform
// permission any existing one.
func (s *Server) targetOrg(w http.ResponseWriter, r *http.Request, requested string) (string, bool) {
	c := callerOf(r)
	if requested == "" || requested == c.OrgID {
		return c.OrgID, true
	}
	if !c.may(rooms.ScopePlatform) {
		problem.Write(w, r, http.StatusForbidden, "forbidden", "organization_id: only the platform administrator acts on another organisation")
		return "", false
	}
	if _, err := s.rooms.Organization(r.Context(), requested); err != nil {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "organization_id: no such organisation")
		return "", false
	}
	return requested, true
}

func (s *Server) handleCreateSpecialist(w http.ResponseWriter, r *http.Request) {
	var in createSpecialist
	if !readJSON(w, r, &in) {
		return
	}
	in.Email, in.Name = strings.TrimSpace(in.Email), strings.TrimSpace(in.Name)
	if in.Role == "" {
		in.Role = rooms.StaffSpecialist
	}
	if addr, err := mail.ParseAddress(in.Email); err != nil || addr.Address != in.Email || len(in.Email) > 254 {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "email: a plain address such as bea@example.com")
		return
	}
	switch {
	case in.Name == "" || len(in.Name) > 200:
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "name: 1 to 200 characters")
		return
	case !in.Role.Valid():
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "role: specialist, supervisor or admin")
		return
	case in.Password != "" && len(in.Password) < minPasswordLength:
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "password: at least 10 characters")
		return
	}
	orgID, ok := s.targetOrg(w, r, in.OrganizationID)
	if !ok {
		return
	}
	generated := in.Password == ""
	if generated {
		in.Password = auth.NewPassword()
	}
	hash, err := auth.HashPassword(in.Password)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	sp, err := s.rooms.CreateSpecialist(r.Context(), orgID, in.Email, in.Name, hash, in.Role)
	if errors.Is(err, rooms.ErrConflict) {
		problem.Write(w, r, http.StatusConflict, "conflict", "a specialist with this email exists")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	ev := s.auditFromRequest(r, audit.ActionSpecialistCreate, "", sp.ID)
	ev.OrgID = orgID
	s.record(r.Context(), ev)
	out := viewSpecialist(sp)
	if generated {
		out.Password = in.Password
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handleListSpecialists(w http.ResponseWriter, r *http.Request) {
	list, err := s.rooms.ListSpecialists(r.Context(), callerOf(r).OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	page, more, ok := paginate(w, r, list, func(sp rooms.Specialist) string { return sp.ID })
	if !ok {
		return
	}
	out := specialistList{Data: make([]specialistView, 0, len(page)), HasMore: more}
	for i := range page {
		out.Data = append(out.Data, viewSpecialist(&page[i]))
	}
	if more {
		out.NextCursor = page[len(page)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- API keys ----

type apiKeyView struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	Name           string    `json:"name"`
	Scopes         []string  `json:"scopes"`
	CreatedAt      time.Time `json:"created_at"`
	Key            string    `json:"key,omitempty"` // the secret: in the create reply only
}

type apiKeyList struct {
	Data       []apiKeyView `json:"data"`
	HasMore    bool         `json:"has_more"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

type createAPIKey struct {
	Name           string   `json:"name"`
	Scopes         []string `json:"scopes"`
	OrganizationID string   `json:"organization_id"`
}

func viewAPIKey(k *rooms.APIKey) apiKeyView {
	return apiKeyView{ID: k.ID, OrganizationID: k.OrgID, Name: k.Name, Scopes: k.EffectiveScopes(), CreatedAt: k.CreatedAt}
}

func (s *Server) handleCreateAPIKey(w http.ResponseWriter, r *http.Request) {
	var in createAPIKey
	if !readJSON(w, r, &in) {
		return
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 100 {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "name: 1 to 100 characters")
		return
	}
	if len(in.Scopes) == 0 {
		in.Scopes = rooms.DefaultScopes()
	}
	scopes, err := rooms.CheckScopes(in.Scopes)
	if err != nil {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "scopes: "+err.Error())
		return
	}
	// Nobody hands out more than they hold.
	c := callerOf(r)
	for _, sc := range scopes {
		if !c.may(sc) {
			problem.Write(w, r, http.StatusForbidden, "forbidden", "scopes: you cannot grant "+strconv.Quote(sc)+", which you do not hold")
			return
		}
	}
	orgID, ok := s.targetOrg(w, r, in.OrganizationID)
	if !ok {
		return
	}
	secret := auth.NewAPIKey()
	key, err := s.rooms.AddAPIKey(r.Context(), orgID, in.Name, auth.HashAPIKey(secret), scopes)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	ev := s.auditFromRequest(r, audit.ActionAPIKeyCreate, "", key.ID)
	ev.OrgID = orgID
	s.record(r.Context(), ev)
	out := viewAPIKey(key)
	out.Key = secret
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handleListAPIKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.rooms.ListAPIKeys(r.Context(), callerOf(r).OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	page, more, ok := paginate(w, r, keys, func(k rooms.APIKey) string { return k.ID })
	if !ok {
		return
	}
	out := apiKeyList{Data: make([]apiKeyView, 0, len(page)), HasMore: more}
	for i := range page {
		out.Data = append(out.Data, viewAPIKey(&page[i]))
	}
	if more {
		out.NextCursor = page[len(page)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRevokeAPIKey(w http.ResponseWriter, r *http.Request) {
	err := s.rooms.RevokeAPIKey(r.Context(), callerOf(r).OrgID, r.PathValue("id"))
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such API key")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionAPIKeyRevoke, "", r.PathValue("id")))
	w.WriteHeader(http.StatusNoContent)
}

// ---- organisations (platform administrators) ----

type orgSummary struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	CreatedAt     time.Time `json:"created_at"`
	Seats         int       `json:"seats"`          // licensed named specialists; 0 is unlimited
	StorageRegion string    `json:"storage_region"` // where its objects are stored (regions.go)
}

func viewOrg(org *rooms.Organization) orgSummary {
	return orgSummary{ID: org.ID, Name: org.Name, CreatedAt: org.CreatedAt, Seats: org.Seats, StorageRegion: regionView(org.StorageRegion)}
}

type orgList struct {
	Data       []orgSummary `json:"data"`
	HasMore    bool         `json:"has_more"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

func (s *Server) handleCreateOrganization(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name          string `json:"name"`
		Seats         int    `json:"seats"`
		StorageRegion string `json:"storage_region"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "name: 1 to 200 characters")
		return
	}
	if in.Seats < 0 || in.Seats > maxSeats {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "seats: 0 (unlimited) to 100000")
		return
	}
	region, ok := s.checkRegion(w, r, in.StorageRegion)
	if !ok {
		return
	}
	org, err := s.rooms.CreateOrganization(r.Context(), in.Name)
	if err == nil && (in.Seats > 0 || region != "") {
		org, err = s.rooms.UpdateOrganization(r.Context(), org.ID, func(o *rooms.Organization) error {
			o.Seats, o.StorageRegion = in.Seats, region
			return nil
		})
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionOrganizationCreate, "", org.ID))
	writeJSON(w, http.StatusCreated, viewOrg(org))
}

func (s *Server) handleListOrganizations(w http.ResponseWriter, r *http.Request) {
	ids, err := s.rooms.OrganizationIDs(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	page, more, ok := paginate(w, r, ids, func(id string) string { return id })
	if !ok {
		return
	}
	out := orgList{Data: make([]orgSummary, 0, len(page)), HasMore: more}
	for _, id := range page {
		org, err := s.rooms.Organization(r.Context(), id)
		if err != nil {
			continue
		}
		out.Data = append(out.Data, viewOrg(org))
	}
	if more {
		out.NextCursor = page[len(page)-1]
	}
	writeJSON(w, http.StatusOK, out)
}

// paginate cuts a list sorted by id into the page that `limit` and `starting_after` ask for.
func paginate[T any](w http.ResponseWriter, r *http.Request, all []T, id func(T) string) (page []T, more, ok bool) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "limit must be a whole number from 1 to 100")
			return nil, false, false
		}
		limit = n
	}
	if after := r.URL.Query().Get("starting_after"); after != "" {
		i, _ := slices.BinarySearchFunc(all, after, func(item T, target string) int { return cmp.Compare(id(item), target) })
		for i < len(all) && id(all[i]) <= after {
			i++
		}
		all = all[i:]
	}
	more = len(all) > limit
	return all[:min(limit, len(all))], more, true
}
