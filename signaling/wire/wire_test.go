package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		name     string
		frame    string
		wantType Type
		wantCode ErrorCode
	}{
		{"a join with a token decodes", `{"type":"join","payload":{"token":"abc","name":" Ann "}}`, TypeJoin, ""},
		{"an admit decodes", `{"type":"admit","payload":{"participant_id":"p1"}}`, TypeAdmit, ""},
		{"an end without payload decodes", `{"type":"end"}`, TypeEnd, ""},
		{"an offer decodes", `{"type":"description","payload":{"type":"offer","sdp":"v=0"}}`, TypeDescription, ""},
		{"an end-of-candidates decodes", `{"type":"candidate","payload":{"candidate":""}}`, TypeCandidate, ""},
		{"bad json is a bad message", `{"type":`, "", CodeBadMessage},
		{"a missing type is a bad message", `{"payload":{}}`, "", CodeBadMessage},
		{"an unknown type is reported as such", `{"type":"teleport"}`, "teleport", CodeUnknownType},
		{"an unknown field is refused", `{"type":"admit","payload":{"participant_id":"p","x":1}}`, TypeAdmit, CodeBadMessage},
		{"a join without token is refused", `{"type":"join","payload":{}}`, TypeJoin, CodeBadMessage},
		{"an admit without id is refused", `{"type":"admit","payload":{}}`, TypeAdmit, CodeBadMessage},
		{"a description of a wrong kind is refused", `{"type":"description","payload":{"type":"pranswer","sdp":"v=0"}}`, TypeDescription, CodeBadMessage},
		{"a payload of the wrong shape is refused", `{"type":"admit","payload":[1,2]}`, TypeAdmit, CodeBadMessage},
		{"a server-only type is unknown to the server", `{"type":"welcome","payload":{}}`, "welcome", CodeUnknownType},
		{"an oversized frame is too large", `{"type":"join","payload":{"token":"` + strings.Repeat("a", MaxMessageSize) + `"}}`, "", CodeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			typ, payload, err := Decode([]byte(c.frame))
			if typ != c.wantType {
				t.Errorf("type = %q, want %q", typ, c.wantType)
			}
			if c.wantCode == "" {
				if err != nil || payload == nil {
					t.Fatalf("Decode: %v (payload %v)", err, payload)
				}
				return
			}
			var werr *Error
			if !errors.As(err, &werr) || werr.Code != c.wantCode {
				t.Fatalf("err = %v, want code %s", err, c.wantCode)
			}
		})
	}
}

func TestJoinNameIsTrimmed(t *testing.T) {
	_, p, err := Decode([]byte(`{"type":"join","payload":{"token":"t","name":"  Ann  "}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*Join).Name; got != "Ann" {
		t.Fatalf("name = %q", got)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","payload":{"token":"abc"}}`,
		`{"type":"candidate","payload":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdp_mid":"0","sdp_mline_index":0}}`,
		`{"type":"description","payload":{"type":"answer","sdp":"v=0\r\n"}}`,
		`{"type":"deny","payload":{"participant_id":"x","reason":"busy"}}`,
		`[]`, `null`, `{"type":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		typ, payload, err := Decode(frame)
		if err == nil && payload == nil {
			t.Fatalf("no error and no payload for type %q", typ)
		}
		var werr *Error
		if err != nil && !errors.As(err, &werr) {
			t.Fatalf("error is not a wire.Error: %v", err)
		}
	})
}
