package signaling

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/problem"
)

// Named-specialist licensing: an organisation is licensed for a number of seats (set by the
// platform administrator); every specialist record takes one. Going over is allowed — nobody is
// locked out of a call — and reported: the organisation's view says so, and the monthly report
// gives the peak and the overage for billing.

const maxSeats = 100000

// seatsView is the organisation's licence as its API shows it.
type seatsView struct {
	Licensed int  `json:"licensed"` // 0: unlimited
	Used     int  `json:"used"`
	Over     bool `json:"over"`
}

// seatReport is one month of seat use.
type seatReport struct {
	OrganizationID string `json:"organization_id"`
	Month          string `json:"month"` // YYYY-MM, UTC
	Licensed       int    `json:"licensed"`
	PeakUsed       int    `json:"peak_used"` // specialists that existed by the month's end
	Overage        int    `json:"overage"`   // peak_used above licensed (0 when unlimited)
}

// seatsOf counts the specialists of an organisation against its licence.
func (s *Server) seatsOf(ctx context.Context, org *rooms.Organization) (seatsView, error) {
	specialists, err := s.rooms.ListSpecialists(ctx, org.ID)
	if err != nil {
		return seatsView{}, err
	}
	v := seatsView{Licensed: org.Seats, Used: len(specialists)}
	v.Over = v.Licensed > 0 && v.Used > v.Licensed
	return v, nil
}

// handleSeatReport reports one month's seat use (the current month by default).
func (s *Server) handleSeatReport(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	month := time.Now().UTC()
	if v := r.URL.Query().Get("month"); v != "" {
		m, err := time.Parse("2006-01", v)
		if err != nil {
			problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "month: YYYY-MM, such as 2026-11")
			return
		}
		month = m
	}
	start := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	org, err := s.rooms.Organization(r.Context(), c.OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	specialists, err := s.rooms.ListSpecialists(r.Context(), c.OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	rep := seatReport{OrganizationID: org.ID, Month: start.Format("2006-01"), Licensed: org.Seats}
	for _, sp := range specialists {
		if sp.CreatedAt.Before(end) { // specialists are never removed: a seat once taken counts
			rep.PeakUsed++
		}
	}
	if org.Seats > 0 && rep.PeakUsed > org.Seats {
		rep.Overage = rep.PeakUsed - org.Seats
	}
	writeJSON(w, http.StatusOK, rep)
}

// handleSetSeats changes an organisation's licence (platform administrators).
func (s *Server) handleSetSeats(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Seats         *int    `json:"seats"`
		StorageRegion *string `json:"storage_region"` // data residency (regions.go)
	}
	if !readJSON(w, r, &in) {
		return
	}
	if in.Seats == nil && in.StorageRegion == nil {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "send seats, storage_region or both")
		return
	}
	if in.Seats != nil && (*in.Seats < 0 || *in.Seats > maxSeats) {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "seats: 0 (unlimited) to 100000")
		return
	}
	var region string
	if in.StorageRegion != nil {
		var ok bool
		if region, ok = s.regionChange(w, r, r.PathValue("id"), *in.StorageRegion); !ok {
			return
		}
	}
	org, err := s.rooms.UpdateOrganization(r.Context(), r.PathValue("id"), func(o *rooms.Organization) error {
		if in.Seats != nil {
			o.Seats = *in.Seats
		}
		if in.StorageRegion != nil {
			o.StorageRegion = region
		}
		return nil
	})
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such organisation")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	for _, changed := range []struct {
		set  bool
		name string
	}{{in.Seats != nil, "seats"}, {in.StorageRegion != nil, "storage_region"}} {
		if changed.set {
			ev := s.auditFromRequest(r, audit.ActionSettingsChange, "", changed.name)
			ev.OrgID = org.ID
			s.record(r.Context(), ev)
		}
	}
	writeJSON(w, http.StatusOK, viewOrg(org))
}
