package rooms

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// OpeningHours are when an organisation's specialists take calls, in its time zone. Outside
// them a customer who opens a link is offered to leave a video message at once instead of
// waiting for the queue timeout. No hours at all means always open.
type OpeningHours struct {
	// TimeZone is an IANA name ("Europe/Paris"); empty means UTC.
	TimeZone string `json:"time_zone"`
	// Weekly are the opening periods; a day may have several (a lunch break).
	Weekly []OpeningPeriod `json:"weekly"`
}

// OpeningPeriod is open from Open to Close ("HH:MM", 24-hour, Close after Open; "24:00" is
// the end of the day) on each of Days ("mon" … "sun").
type OpeningPeriod struct {
	Days  []string `json:"days"`
	Open  string   `json:"open"`
	Close string   `json:"close"`
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} // time.Weekday order

const maxOpeningPeriods = 50

// minutesOf reads "HH:MM" as minutes since midnight; "24:00" is 1440.
func minutesOf(hhmm string) (int, bool) {
	var h, m int
	if len(hhmm) != 5 || hhmm[2] != ':' {
		return 0, false
	}
	if _, err := fmt.Sscanf(hhmm, "%02d:%02d", &h, &m); err != nil || h < 0 || m < 0 || m > 59 {
		return 0, false
	}
	if n := h*60 + m; n <= 24*60 {
		return n, true
	}
	return 0, false
}

// check validates the hours.
func (o *OpeningHours) check() error {
	if o == nil {
		return nil
	}
	if _, err := time.LoadLocation(o.TimeZone); err != nil {
		return fmt.Errorf("%w: opening_hours.time_zone %q is not an IANA time zone", ErrInvalidPolicy, o.TimeZone)
	}
	if len(o.Weekly) > maxOpeningPeriods {
		return fmt.Errorf("%w: opening_hours.weekly has more than %d periods", ErrInvalidPolicy, maxOpeningPeriods)
	}
	for i, p := range o.Weekly {
		open, ok1 := minutesOf(p.Open)
		closing, ok2 := minutesOf(p.Close)
		if !ok1 || !ok2 || closing <= open {
			return fmt.Errorf("%w: opening_hours.weekly[%d]: open and close are HH:MM with close after open", ErrInvalidPolicy, i)
		}
		if len(p.Days) == 0 {
			return fmt.Errorf("%w: opening_hours.weekly[%d].days is empty", ErrInvalidPolicy, i)
		}
		for _, d := range p.Days {
			if !slices.Contains(weekdays, d) {
				return fmt.Errorf("%w: opening_hours.weekly[%d].days: %q is not one of %s", ErrInvalidPolicy, i, d, strings.Join(weekdays, ", "))
			}
		}
	}
	return nil
}

// OpenAt says whether the organisation is open at t. Hours that cannot be read (never stored:
// Check refuses them) count as open, so that customers are never turned to messages by mistake.
func (o *OpeningHours) OpenAt(t time.Time) bool {
	if o == nil || len(o.Weekly) == 0 {
		return true
	}
	loc, err := time.LoadLocation(o.TimeZone)
	if err != nil {
		return true
	}
	local := t.In(loc)
	day := weekdays[local.Weekday()]
	now := local.Hour()*60 + local.Minute()
	for _, p := range o.Weekly {
		open, _ := minutesOf(p.Open)
		closing, _ := minutesOf(p.Close)
		if slices.Contains(p.Days, day) && now >= open && now < closing {
			return true
		}
	}
	return false
}

// NextOpening is the next moment from t at which the organisation opens, within a week; false
// when it never opens (or is open now).
func (o *OpeningHours) NextOpening(t time.Time) (time.Time, bool) {
	if o.OpenAt(t) {
		return time.Time{}, false
	}
	loc, err := time.LoadLocation(o.TimeZone)
	if err != nil {
		return time.Time{}, false
	}
	local := t.In(loc)
	var best time.Time
	for d := 0; d <= 7; d++ {
		day := time.Date(local.Year(), local.Month(), local.Day()+d, 0, 0, 0, 0, loc)
		for _, p := range o.Weekly {
			if !slices.Contains(p.Days, weekdays[day.Weekday()]) {
				continue
			}
			open, _ := minutesOf(p.Open)
			at := time.Date(day.Year(), day.Month(), day.Day(), open/60, open%60, 0, 0, loc)
			if at.After(t) && (best.IsZero() || at.Before(best)) {
				best = at
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}
