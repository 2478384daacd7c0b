package signaling

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/problem"
)

// Analytics are computed from the sessions themselves (their participants' join, admission
// and leave times), over a window of creation times: what a supervisor asks of a day or a
// month of service.

const (
	defaultAnalyticsWindow = 30 * 24 * time.Hour
	maxAnalyticsWindow     = 366 * 24 * time.Hour
)

type analyticsReport struct {
	From              time.Time          `json:"from"`
	To                time.Time          `json:"to"`
	Sessions          int                `json:"sessions"`
	SessionsPerDay    []dayCount         `json:"sessions_per_day"`
	Customers         customerOutcomes   `json:"customers"`
	WaitingSeconds    distribution       `json:"waiting_seconds"`
	DurationSeconds   distribution       `json:"duration_seconds"`
	PerSpecialist     []specialistFigure `json:"per_specialist"`
	SessionsStillOpen int                `json:"sessions_still_open"`
	Quality           qualityAnalytics   `json:"quality"` // see quality.go
	// WaitingPerDay is the waiting time of the customers admitted, by day of the session's
	// creation (days with admissions only).
	WaitingPerDay []dayDistribution `json:"waiting_per_day"`
}

type dayDistribution struct {
	Date string `json:"date"`
	distribution
}

type dayCount struct {
	Date     string `json:"date"` // YYYY-MM-DD, UTC
	Sessions int    `json:"sessions"`
}

// customerOutcomes counts customers by how their wait ended.
type customerOutcomes struct {
	Admitted  int `json:"admitted"`
	Denied    int `json:"denied"`
	Abandoned int `json:"abandoned"` // left the waiting room before anyone admitted them
	Waiting   int `json:"waiting"`   // still waiting now
}

// distribution summarises durations in seconds.
type distribution struct {
	Count  int     `json:"count"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
}

type specialistFigure struct {
	SpecialistID  string       `json:"specialist_id"`
	Name          string       `json:"name"`
	Sessions      int          `json:"sessions"`
	InCallSeconds distribution `json:"in_call_seconds"`
}

func summarize(seconds []float64) distribution {
	if len(seconds) == 0 {
		return distribution{}
	}
	slices.Sort(seconds)
	at := func(q float64) float64 { return seconds[min(len(seconds)-1, int(q*float64(len(seconds))))] }
	return distribution{Count: len(seconds), Median: at(0.5), P90: at(0.9), Max: seconds[len(seconds)-1]}
}

// analyze computes the report over sessions created in [from, to).
func analyze(sessions []rooms.Session, from, to, now time.Time) analyticsReport {
	rep := analyticsReport{From: from, To: to, SessionsPerDay: []dayCount{}, PerSpecialist: []specialistFigure{},
		WaitingPerDay: []dayDistribution{}}
	perDay := map[string]int{}
	waitsPerDay := map[string][]float64{}
	var waits, durations []float64
	type staff struct {
		name     string
		sessions int
		inCall   []float64
	}
	bySpecialist := map[string]*staff{}
	for _, s := range sessions {
		if s.CreatedAt.Before(from) || !s.CreatedAt.Before(to) {
			continue
		}
		rep.Sessions++
		perDay[s.CreatedAt.UTC().Format(time.DateOnly)]++
		if s.State != rooms.SessionEnded {
			rep.SessionsStillOpen++
		}
		var firstAdmission *time.Time
		for _, p := range s.Participants {
			switch p.Role {
			case rooms.RoleCustomer:
				switch {
				case p.AdmittedAt != nil:
					rep.Customers.Admitted++
					waits = append(waits, p.AdmittedAt.Sub(p.JoinedAt).Seconds())
					day := s.CreatedAt.UTC().Format(time.DateOnly)
					waitsPerDay[day] = append(waitsPerDay[day], p.AdmittedAt.Sub(p.JoinedAt).Seconds())
					if firstAdmission == nil || p.AdmittedAt.Before(*firstAdmission) {
						firstAdmission = p.AdmittedAt
					}
				case p.State == rooms.ParticipantDenied:
					rep.Customers.Denied++
				case p.Queued() && s.State != rooms.SessionEnded:
					rep.Customers.Waiting++
				default:
					rep.Customers.Abandoned++
				}
			case rooms.RoleSpecialist:
				id, ok := strings.CutPrefix(p.Key, "specialist:")
				if !ok {
					continue // a specialist link, not a signed-in specialist
				}
				st := bySpecialist[id]
				if st == nil {
					st = &staff{name: p.Name}
					bySpecialist[id] = st
				}
				st.sessions++
				end := now
				if p.LeftAt != nil {
					end = *p.LeftAt
				} else if s.EndedAt != nil {
					end = *s.EndedAt
				}
				st.inCall = append(st.inCall, end.Sub(p.JoinedAt).Seconds())
			}
		}
		if firstAdmission != nil && s.EndedAt != nil {
			durations = append(durations, s.EndedAt.Sub(*firstAdmission).Seconds())
		}
	}
	for day := from.UTC().Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		key := day.Format(time.DateOnly)
		rep.SessionsPerDay = append(rep.SessionsPerDay, dayCount{Date: key, Sessions: perDay[key]})
		if w := waitsPerDay[key]; len(w) > 0 {
			rep.WaitingPerDay = append(rep.WaitingPerDay, dayDistribution{Date: key, distribution: summarize(w)})
		}
	}
	rep.WaitingSeconds = summarize(waits)
	rep.DurationSeconds = summarize(durations)
	for id, st := range bySpecialist {
		rep.PerSpecialist = append(rep.PerSpecialist, specialistFigure{SpecialistID: id, Name: st.name,
			Sessions: st.sessions, InCallSeconds: summarize(st.inCall)})
	}
	slices.SortFunc(rep.PerSpecialist, func(a, b specialistFigure) int { return strings.Compare(a.SpecialistID, b.SpecialistID) })
	return rep
}

func (s *Server) handleAnalytics(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UTC()
	to, from := now, now.Add(-defaultAnalyticsWindow)
	for name, target := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := r.URL.Query().Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				problem.Write(w, r, http.StatusBadRequest, "bad-parameter", name+": an RFC 3339 time such as 2026-11-01T00:00:00Z")
				return
			}
			*target = t.UTC()
		}
	}
	if !from.Before(to) || to.Sub(from) > maxAnalyticsWindow {
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "from must be before to, at most 366 days apart")
		return
	}
	var all []rooms.Session
	after := ""
	for {
		page, more, err := s.rooms.ListSessions(r.Context(), callerOf(r).OrgID, 100, after)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		all = append(all, page...)
		if !more || len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
	}
	rep := analyze(all, from, to, now)
	var err error
	if rep.Quality, err = s.qualityOf(r.Context(), callerOf(r).OrgID, all, from, to); err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
