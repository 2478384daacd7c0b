package wire

import (
	"strings"
	"testing"
)

func TestEmergencyDecodes(t *testing.T) {
	typ, payload, err := Decode([]byte(`{"type":"emergency","payload":{"active":true,"reason":"  a fall "}}`))
	if err != nil || typ != TypeEmergency {
		t.Fatalf("decode: %v %v", typ, err)
	}
	if m := payload.(*EmergencySend); !m.Active || m.Reason != "a fall" {
		t.Fatalf("payload %+v", m)
	}
	for name, frame := range map[string]string{
		"a reason too long": `{"type":"emergency","payload":{"active":true,"reason":"` + strings.Repeat("x", maxReasonLen+1) + `"}}`,
		"an unknown field":  `{"type":"emergency","payload":{"active":true,"where":"here"}}`,
		"active as text":    `{"type":"emergency","payload":{"active":"yes"}}`,
	} {
		if _, _, err := Decode([]byte(frame)); err == nil || err.(*Error).Code != CodeBadMessage {
			t.Errorf("%s: %v, want bad_message", name, err)
		}
	}
}
