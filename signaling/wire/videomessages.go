package wire

import "time"

// TypeAfterHours tells a customer who joined while the organisation is closed (its opening
// hours) that they may leave a video message now; they keep their place in the line
// (server → client).
const TypeAfterHours Type = "after_hours"

// AfterHours is the payload of after_hours; OpensAt is the next opening, when there is one
// within a week.
type AfterHours struct {
	OpensAt *time.Time `json:"opens_at,omitempty"`
}
