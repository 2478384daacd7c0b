package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// FuzzConfigFile loads arbitrary config files. Loading either fails with an error that names
// the file, or gives settings that validate: a node never starts on a half-read file.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"addr":"127.0.0.1:9000","max_participants":4,"ice_servers":["stun:a","turn:b"],"ice_loopback":false}`,
		`{"shutdown_timeout":"3s","link_ttl":"1h","log_level":"debug","api_rate":5,"max_sockets_per_ip":2}`,
		`{"addr":1}`, `{"max_participants":"many"}`, `{"unknown_key":true}`, `[]`, `null`, `"x"`,
		`{"addr":"127.0.0.1:9000"} trailing`, `{"ice_servers":[1,2]}`, `{"max_participants":1e99}`,
		`{"read_timeout":"1ns"}`, `{"tls_cert":"x"}`, `{"addr":{"nested":{}}}`, "\xff\xfe{}",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "assist.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load([]string{"-config", path}, func(string) string { return "" }, io.Discard)
		if err != nil {
			if !strings.Contains(err.Error(), path) && !mentionsASetting(err.Error()) {
				t.Fatalf("error names neither the file nor a setting: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("loaded settings that do not validate: %v", err)
		}
	})
}

// FuzzSettingFromEnvironment sets one setting from the environment to an arbitrary value.
func FuzzSettingFromEnvironment(f *testing.F) {
	all := settings()
	for i, v := range []string{"0", "-1", "1h", "true", "stun:x", "a,b,,c", "99999999999999999999", " ", "1e3"} {
		f.Add(uint(i), v)
	}
	f.Fuzz(func(t *testing.T, which uint, value string) {
		s := all[which%uint(len(all))]
		getenv := func(k string) string {
			if k == s.env() {
				return value
			}
			return ""
		}
		cfg, err := Load(nil, getenv, io.Discard)
		if err != nil {
			if !mentionsASetting(err.Error()) {
				t.Fatalf("%s=%q: error names no setting: %v", s.env(), value, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s=%q: loaded settings that do not validate: %v", s.env(), value, err)
		}
	})
}

func mentionsASetting(msg string) bool {
	for _, s := range settings() {
		if strings.Contains(msg, s.name) || strings.Contains(msg, s.env()) {
			return true
		}
	}
	return false
}
