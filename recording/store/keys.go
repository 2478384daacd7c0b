package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidKey is returned for a key, prefix, id or name that the layout
// does not allow.
var ErrInvalidKey = errors.New("store: invalid key")

// The kinds of object a session has; each is a folder under the session.
const (
	KindRecordings = "recordings"
	KindSnapshots  = "snapshots"
	KindFiles      = "files"
)

const (
	maxIDLen   = 128
	maxNameLen = 255
	maxKeyLen  = 1024 // S3's limit, in bytes
)

// OrgPrefix is the folder holding everything of one organisation: "orgs/{org}/".
func OrgPrefix(org string) (string, error) {
	if err := checkID("organisation id", org); err != nil {
		return "", err
	}
	return "orgs/" + org + "/", nil
}

// SessionPrefix is the folder holding everything of one session:
// "orgs/{org}/sessions/{session}/". Deleting or listing it touches nothing
// of another session or organisation, because ids cannot contain "/".
func SessionPrefix(org, session string) (string, error) {
	if err := checkID("organisation id", org); err != nil {
		return "", err
	}
	if err := checkID("session id", session); err != nil {
		return "", err
	}
	return "orgs/" + org + "/sessions/" + session + "/", nil
}

// ObjectKey is the key of one object: "orgs/{org}/sessions/{session}/{kind}/{name}".
// kind is KindRecordings, KindSnapshots or KindFiles. name is a file name
// (letters, digits, '.', '_', '-'; not starting with '.'), so no key made here
// can reach outside its session.
func ObjectKey(org, session, kind, name string) (string, error) {
	prefix, err := SessionPrefix(org, session)
	if err != nil {
		return "", err
	}
	switch kind {
	case KindRecordings, KindSnapshots, KindFiles:
	default:
		return "", fmt.Errorf("%w: kind %q is not one of %s, %s, %s", ErrInvalidKey, kind, KindRecordings, KindSnapshots, KindFiles)
	}
	if err := checkName(name); err != nil {
		return "", err
	}
	return prefix + kind + "/" + name, nil
}

// checkID accepts ids as the product makes them: URL-safe base64 or similar.
func checkID(what, id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%w: %s must be 1 to %d characters", ErrInvalidKey, what, maxIDLen)
	}
	for _, c := range id {
		if !isAlnum(c) && c != '-' && c != '_' {
			return fmt.Errorf("%w: %s %q may hold only letters, digits, '-' and '_'", ErrInvalidKey, what, id)
		}
	}
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: name must be 1 to %d characters", ErrInvalidKey, maxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w: name %q must not start with '.'", ErrInvalidKey, name)
	}
	for _, c := range name {
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("%w: name %q may hold only letters, digits, '.', '-' and '_'", ErrInvalidKey, name)
		}
	}
	return nil
}

func isAlnum(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// checkKey is the Store's own guard for keys that did not come from
// ObjectKey: S3 servers disagree on keys with empty, "." or ".." segments
// (MinIO refuses them, others store them), so none are allowed.
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen || !utf8.ValidString(key) || strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return checkSegments(key)
}

// checkPrefix guards List and DeletePrefix: a prefix must name a whole
// folder, so that "orgs/a" cannot also match "orgs/ab/...".
func checkPrefix(prefix string) error {
	if len(prefix) > maxKeyLen || !utf8.ValidString(prefix) || !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("%w: prefix %q must end with '/'", ErrInvalidKey, prefix)
	}
	return checkSegments(strings.TrimSuffix(prefix, "/"))
}

func checkSegments(path string) error {
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, '.' or '..' segment", ErrInvalidKey, path)
		}
	}
	return nil
}
