package wire

import (
	"strings"
	"testing"
)

func TestStatsMessageValidation(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		wantErr string // "" means accepted
	}{
		{"a full sample is accepted", `{"rtt_ms":42.5,"jitter_ms":3,"loss_pct":0.5,"send_loss_pct":0,"send_kbps":900,"receive_kbps":1200.5,"frame_rate":30,"interval_ms":10000}`, ""},
		{"one figure is enough", `{"rtt_ms":12,"interval_ms":10000}`, ""},
		{"zeroes are figures", `{"loss_pct":0,"interval_ms":5000}`, ""},
		{"no figure at all is refused", `{"interval_ms":10000}`, "no figure"},
		{"a missing interval is refused", `{"rtt_ms":12}`, "interval_ms"},
		{"an interval under a second is refused", `{"rtt_ms":12,"interval_ms":10}`, "interval_ms"},
		{"loss above 100% is refused", `{"loss_pct":101,"interval_ms":10000}`, "loss_pct"},
		{"negative jitter is refused", `{"jitter_ms":-1,"interval_ms":10000}`, "jitter_ms"},
		{"an absurd round trip is refused", `{"rtt_ms":1e9,"interval_ms":10000}`, "rtt_ms"},
		{"an absurd frame rate is refused", `{"frame_rate":1000,"interval_ms":10000}`, "frame_rate"},
		{"an absurd bitrate is refused", `{"send_kbps":1e12,"interval_ms":10000}`, "send_kbps"},
		{"text for a number is refused", `{"rtt_ms":"fast","interval_ms":10000}`, "bad stats payload"},
		{"unknown fields are refused", `{"rtt_ms":1,"interval_ms":10000,"mos":4}`, "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, payload, err := Decode([]byte(`{"type":"stats","payload":` + tc.payload + `}`))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if _, ok := payload.(*StatsSend); !ok || typ != TypeStats {
					t.Fatalf("decoded %s %T", typ, payload)
				}
				return
			}
			werr, ok := err.(*Error)
			if !ok || werr.Code != CodeBadMessage || !strings.Contains(werr.Message, tc.wantErr) {
				t.Fatalf("err = %v, want bad_message mentioning %q", err, tc.wantErr)
			}
		})
	}
}
