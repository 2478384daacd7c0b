package wire

import (
	"strings"
	"testing"
)

func TestDecodeStaff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame string
		code  ErrorCode // "" when the frame is good
	}{
		{"a hello with a token is good", `{"type":"staff_hello","payload":{"token":"t"}}`, ""},
		{"a hello without a token is refused", `{"type":"staff_hello","payload":{}}`, CodeBadMessage},
		{"presence can be away", `{"type":"presence_set","payload":{"status":"away"}}`, ""},
		{"presence cannot be set offline by hand", `{"type":"presence_set","payload":{"status":"offline"}}`, CodeBadMessage},
		{"a team message is good", `{"type":"team_send","payload":{"to":"team","text":" hi "}}`, ""},
		{"an empty team message is refused", `{"type":"team_send","payload":{"to":"team","text":"   "}}`, CodeBadMessage},
		{"a team message too long is refused", `{"type":"team_send","payload":{"to":"team","text":"` + strings.Repeat("x", maxTeamTextLen+1) + `"}}`, CodeBadMessage},
		{"an unknown field is refused", `{"type":"team_read","payload":{"channel":"team","seq":1,"x":1}}`, CodeBadMessage},
		{"an admit needs a participant", `{"type":"queue_admit","payload":{"session_id":"ses_1"}}`, CodeBadMessage},
		{"a deny reason has a limit", `{"type":"queue_deny","payload":{"session_id":"ses_1","participant_id":"par_1","reason":"` + strings.Repeat("x", maxReasonLen+1) + `"}}`, CodeBadMessage},
		{"a transfer needs a specialist", `{"type":"queue_transfer","payload":{"session_id":"ses_1"}}`, CodeBadMessage},
		{"a call message is not a staff message", `{"type":"join","payload":{"token":"t"}}`, CodeUnknownType},
		{"no type", `{"payload":{}}`, CodeBadMessage},
		{"not JSON", `hello`, CodeBadMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, payload, err := DecodeStaff([]byte(tc.frame))
			if tc.code == "" {
				if err != nil || payload == nil {
					t.Fatalf("refused: %v", err)
				}
				if m, ok := payload.(*TeamSend); ok && m.Text != "hi" {
					t.Fatalf("text not trimmed: %q", m.Text)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Code != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
}
