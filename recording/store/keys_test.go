package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/assist-video/assist/recording/store"
)

func TestObjectKey(t *testing.T) {
	tests := []struct {
		name                     string
		org, session, kind, file string
		want                     string // "" means ErrInvalidKey
	}{
		{"a recording", "org_1", "Ses-2", store.KindRecordings, "call.webm", "orgs/org_1/sessions/Ses-2/recordings/call.webm"},
		{"a snapshot", "o", "s", store.KindSnapshots, "2026-11-25T10.00.00.jpg", "orgs/o/sessions/s/snapshots/2026-11-25T10.00.00.jpg"},
		{"a shared file", "o", "s", store.KindFiles, "report_v2.pdf", "orgs/o/sessions/s/files/report_v2.pdf"},
		{"an unknown kind", "o", "s", "secrets", "a", ""},
		{"an empty org", "", "s", store.KindFiles, "a", ""},
		{"an empty session", "o", "", store.KindFiles, "a", ""},
		{"an empty name", "o", "s", store.KindFiles, "", ""},
		{"an org with a slash", "o/sessions/x", "s", store.KindFiles, "a", ""},
		{"an org of dots", "..", "s", store.KindFiles, "a", ""},
		{"a session with a slash", "o", "../../other", store.KindFiles, "a", ""},
		{"a name with a slash", "o", "s", store.KindFiles, "../../../other/x", ""},
		{"a name of two dots", "o", "s", store.KindFiles, "..", ""},
		{"a hidden name", "o", "s", store.KindFiles, ".env", ""},
		{"a name with a space", "o", "s", store.KindFiles, "a b", ""},
		{"a name with a backslash", "o", "s", store.KindFiles, `a\b`, ""},
		{"a name with a NUL", "o", "s", store.KindFiles, "a\x00", ""},
		{"a non-ASCII name", "o", "s", store.KindFiles, "réunion.pdf", ""},
		{"a name too long", "o", "s", store.KindFiles, strings.Repeat("a", 256), ""},
		{"an id too long", strings.Repeat("o", 129), "s", store.KindFiles, "a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.ObjectKey(tt.org, tt.session, tt.kind, tt.file)
			if tt.want == "" {
				if !errors.Is(err, store.ErrInvalidKey) {
					t.Errorf("ObjectKey = %q, %v; want ErrInvalidKey", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ObjectKey = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSessionPrefix(t *testing.T) {
	t.Run("is the folder every object key of the session starts with", func(t *testing.T) {
		p, err := store.SessionPrefix("o", "s")
		if err != nil || p != "orgs/o/sessions/s/" {
			t.Fatalf("SessionPrefix = %q, %v", p, err)
		}
		k, _ := store.ObjectKey("o", "s", store.KindFiles, "a")
		if !strings.HasPrefix(k, p) {
			t.Errorf("%q does not start with %q", k, p)
		}
	})
	t.Run("refuses ids that could reach another session", func(t *testing.T) {
		for _, ids := range [][2]string{{"o", ""}, {"", "s"}, {"o/sessions/x", "s"}, {"o", "s/../t"}} {
			if p, err := store.SessionPrefix(ids[0], ids[1]); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("SessionPrefix(%q, %q) = %q, %v; want ErrInvalidKey", ids[0], ids[1], p, err)
			}
		}
	})
}
