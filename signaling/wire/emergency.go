package wire

import (
	"errors"
	"strings"
)

// TypeEmergency flags the session as an emergency, or clears the flag. A specialist in the
// call sends EmergencySend; everyone in the call receives Emergency (kept in the timeline).
// While flagged, the customer's page shares its location (geolocation messages) every few
// seconds and on movement, and the organisation's dispatch receiver is told.
const TypeEmergency Type = "emergency"

// EmergencySend is a specialist's flag.
type EmergencySend struct {
	Active bool   `json:"active"`
	Reason string `json:"reason,omitempty"`
}

// Emergency as delivered and kept.
type Emergency struct {
	Meta
	EmergencySend
}

func (m *EmergencySend) validate() error {
	if len(m.Reason) > maxReasonLen {
		return errors.New("reason is too long")
	}
	m.Reason = strings.TrimSpace(m.Reason)
	return nil
}
