package wire

import (
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// knownCodes are the error codes a client may be sent (docs/design.md).
var knownCodes = map[ErrorCode]bool{
	CodeBadMessage: true, CodeUnknownType: true, CodeTooLarge: true, CodeUnauthorized: true,
	CodeForbidden: true, CodeNotFound: true, CodeInvalidState: true, CodeRateLimited: true, CodeInternal: true,
}

// FuzzDecodeEveryPayload throws frames of every client type at Decode (seeds: one good and a few
// bad frames per type, here and in testdata/fuzz). A frame is refused with a typed error of a
// documented code and no larger than the frame, or accepted; and what is accepted, encoded again
// as the server relays and keeps it, is accepted again: validation is stable, so a timeline
// entry never turns bad on its way back to a client.
func FuzzDecodeEveryPayload(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","payload":{"token":"t","session_id":"ses_1","name":"  Ann  "}}`,
		`{"type":"admit","payload":{"participant_id":"par_1"}}`,
		`{"type":"deny","payload":{"participant_id":"par_1","reason":"busy"}}`,
		`{"type":"end"}`, `{"type":"leave","payload":{}}`, `{"type":"leave","payload":null}`,
		`{"type":"description","payload":{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}}`,
		`{"type":"candidate","payload":{"candidate":"candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host","sdp_mid":"0","sdp_mline_index":0,"username_fragment":"abcd"}}`,
		`{"type":"chat","payload":{"text":"hello 👋"}}`,
		`{"type":"chat","payload":{"text":"   "}}`,
		`{"type":"annotation","payload":{"target":"video:par_1","action":"stroke","stroke":{"id":"s1","tool":"freehand","color":"#ff0000","width":0.01,"points":[[0.1,0.2],[0.3,0.4]]}}}`,
		`{"type":"annotation","payload":{"target":"snapshot:snp_1","action":"stroke","stroke":{"id":"s2","tool":"text","color":"#00FF00","width":0.05,"points":[[1,1]],"text":"here"}}}`,
		`{"type":"annotation","payload":{"target":"video:par_1","action":"undo"}}`,
		`{"type":"annotation","payload":{"target":"video:par_1","action":"stroke","stroke":{"id":"s3","tool":"arrow","color":"#000000","width":1e-9,"points":[[0,0],[1e-320,1]]}}}`,
		`{"type":"pointer","payload":{"target":"video:par_1","x":0.5,"y":0.5,"visible":true}}`,
		`{"type":"pointer","payload":{"target":"video:","x":-0,"y":1.0000000000000002}}`,
		`{"type":"camera_control","payload":{"command":"zoom","value":2.5}}`,
		`{"type":"camera_control","payload":{"command":"torch","value":1}}`,
		`{"type":"camera_control","payload":{"command":"flip"}}`,
		`{"type":"camera_capabilities","payload":{"can_flip":true,"facing_mode":"environment","torch":true,"zoom":true,"zoom_min":1,"zoom_max":10,"zoom_step":0.1,"zoom_value":1}}`,
		`{"type":"camera_control_result","payload":{"command":"torch","applied":false,"reason":"no torch"}}`,
		`{"type":"snapshot_request"}`, `{"type":"geolocation_request","payload":{}}`,
		`{"type":"geolocation","payload":{"latitude":48.85,"longitude":2.35,"accuracy":12,"timestamp":1700000000000}}`,
		`{"type":"geolocation","payload":{"declined":true,"reason":"denied by the user"}}`,
		`{"type":"screen_share","payload":{"active":true,"track_id":"t1"}}`,
		`{"type":"record","payload":{"active":true}}`,
		`{"type":"chat","payload":{"text":"a"},"payload":{"text":"b"}}`,
		`{"type":"chat","payload":{"text":"\ud800"}}`,
		`{"type":"join","payload":{"token":"t","TOKEN":"u"}}`,
		`{"type":"geolocation","payload":{"latitude":1e400}}`,
		`{"type":"annotation","payload":{"target":"video:x","action":"stroke","stroke":{"id":"s","tool":"circle","color":"#123456","width":0.1,"points":[[0,0]]}}}`,
		"\xef\xbb\xbf{\"type\":\"end\"}",
		`{"type":"end"} {"type":"end"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		typ, payload, err := Decode(frame)
		if err != nil {
			var werr *Error
			if !errors.As(err, &werr) {
				t.Fatalf("error is not a *wire.Error: %T %v", err, err)
			}
			if !knownCodes[werr.Code] {
				t.Fatalf("undocumented error code %q", werr.Code)
			}
			if len(werr.Message) > len(frame)+256 {
				t.Fatalf("error message of %d bytes for a frame of %d", len(werr.Message), len(frame))
			}
			if payload != nil {
				t.Fatal("a payload came with an error")
			}
			return
		}
		if payload == nil || typ == "" {
			t.Fatalf("accepted without a type or payload: %q %v", typ, payload)
		}
		again, err := Encode(typ, payload)
		if err != nil {
			t.Fatalf("an accepted %s payload does not encode: %v", typ, err)
		}
		typ2, _, err := Decode(again)
		if err != nil || typ2 != typ {
			t.Fatalf("accepted %q, but its re-encoding %q is refused: %v", frame, again, err)
		}
	})
}
