package rooms

import (
	"errors"
	"testing"
	"time"
)

func TestOpeningHours(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("no time zone database (install tzdata): %v", err)
	}
	week := &OpeningHours{TimeZone: "Europe/Paris", Weekly: []OpeningPeriod{
		{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Open: "09:00", Close: "12:30"},
		{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Open: "13:30", Close: "18:00"},
		{Days: []string{"sat"}, Open: "10:00", Close: "24:00"},
	}}
	at := func(day, hh, mm int) time.Time { return time.Date(2026, time.November, day, hh, mm, 0, 0, paris) } // 23 Nov 2026 is a Monday
	for _, c := range []struct {
		name string
		t    time.Time
		open bool
		next time.Time
	}{
		{"Monday morning", at(23, 9, 0), true, time.Time{}},
		{"Monday at lunch", at(23, 12, 30), false, at(23, 13, 30)},
		{"Monday evening", at(23, 18, 0), false, at(24, 9, 0)},
		{"Friday night until Saturday", at(27, 22, 0), false, at(28, 10, 0)},
		{"Saturday before midnight", at(28, 23, 59), true, time.Time{}},
		{"Sunday", at(29, 11, 0), false, at(30, 9, 0)},
		{"Monday morning in UTC terms", time.Date(2026, time.November, 23, 8, 30, 0, 0, time.UTC), true, time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := week.OpenAt(c.t); got != c.open {
				t.Fatalf("OpenAt = %v, want %v", got, c.open)
			}
			next, ok := week.NextOpening(c.t)
			if ok != !c.next.IsZero() || !next.Equal(c.next) {
				t.Fatalf("NextOpening = %v %v, want %v", next, ok, c.next)
			}
		})
	}
	t.Run("no hours means always open", func(t *testing.T) {
		var none *OpeningHours
		if !none.OpenAt(at(29, 3, 0)) || !(&OpeningHours{}).OpenAt(at(29, 3, 0)) {
			t.Fatal("closed without hours")
		}
	})
	t.Run("bad hours are refused", func(t *testing.T) {
		for name, h := range map[string]OpeningHours{
			"a time zone that does not exist": {TimeZone: "Nowhere/Town", Weekly: week.Weekly},
			"close before open":               {Weekly: []OpeningPeriod{{Days: []string{"mon"}, Open: "18:00", Close: "09:00"}}},
			"a time past midnight":            {Weekly: []OpeningPeriod{{Days: []string{"mon"}, Open: "09:00", Close: "24:30"}}},
			"minutes of 60":                   {Weekly: []OpeningPeriod{{Days: []string{"mon"}, Open: "09:60", Close: "10:00"}}},
			"a day by its full name":          {Weekly: []OpeningPeriod{{Days: []string{"monday"}, Open: "09:00", Close: "10:00"}}},
			"no days":                         {Weekly: []OpeningPeriod{{Open: "09:00", Close: "10:00"}}},
		} {
			if err := (Policy{OpeningHours: &h}).Check(1, nil); !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("%s: %v, want ErrInvalidPolicy", name, err)
			}
		}
		if err := (Policy{OpeningHours: week}).Check(1, nil); err != nil {
			t.Fatalf("good hours: %v", err)
		}
	})
}
