package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedenceIsDefaultsFileEnvFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "assist.json")
	os.WriteFile(file, []byte(`{"addr":"127.0.0.1:9000","data_dir":"from-file","link_ttl":"2h","ice_servers":["stun:a:3478"]}`), 0o600)
	cfg, err := Load([]string{"-config", file, "-data-dir", "from-flag"},
		env(map[string]string{"ASSIST_ADDR": "127.0.0.1:9001", "ASSIST_DATA_DIR": "from-env"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9001" {
		t.Errorf("addr = %s: the environment must win over the file", cfg.Addr)
	}
	if cfg.DataDir != "from-flag" {
		t.Errorf("data dir = %s: flags must win over the environment", cfg.DataDir)
	}
	if cfg.LinkTTL != 2*time.Hour || len(cfg.ICEServers) != 1 {
		t.Errorf("file settings not applied: %+v", cfg)
	}
	if cfg.ConsoleTTL != Defaults().ConsoleTTL {
		t.Errorf("defaults lost")
	}
}

func TestBadSettingsAreNamed(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "u.json")
	os.WriteFile(unknown, []byte(`{"adress":"x"}`), 0o600)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"an unknown config-file key", []string{"-config", unknown}, nil, `unknown setting "adress"`},
		{"a bad listen address", []string{"-addr", "nope"}, nil, "addr:"},
		{"a bad duration from env", nil, map[string]string{"ASSIST_LINK_TTL": "soon"}, "ASSIST_LINK_TTL"},
		{"a half TLS configuration", []string{"-tls-cert", "c.pem"}, nil, "tls-cert and tls-key"},
		{"S3 without credentials", []string{"-s3-endpoint", "127.0.0.1:9000"}, nil, "s3-access-key"},
		{"a bad ICE server", []string{"-ice-servers", "http://x"}, nil, "ice-servers"},
		{"a bad bootstrap key", nil, map[string]string{"ASSIST_BOOTSTRAP_API_KEY": "secret"}, "bootstrap-api-key"},
		{"a TURN relay address that is no IP", []string{"-turn-udp", ":3478", "-turn-relay-ip", "eth0"}, nil, "turn-relay-ip"},
		{"a TURN relay address of another family", []string{"-turn-udp", ":3478", "-turn-public-ip", "203.0.113.7", "-turn-relay-ip", "::"}, nil, "turn-relay-ip"},
		{"half a TURN port range", []string{"-turn-udp", ":3478", "-turn-min-port", "50000"}, nil, "turn-min-port and turn-max-port"},
		{"an upside-down TURN port range", []string{"-turn-udp", ":3478", "-turn-min-port", "50010", "-turn-max-port", "50000"}, nil, "turn-min-port"},
		{"a privileged TURN port", nil, map[string]string{"ASSIST_TURN_UDP": ":3478", "ASSIST_TURN_MIN_PORT": "80", "ASSIST_TURN_MAX_PORT": "90"}, "turn-min-port"},
		{"a TURN port beyond 65535", []string{"-turn-udp", ":3478", "-turn-min-port", "60000", "-turn-max-port", "70000"}, nil, "turn-max-port"},
		{"TURN relay settings without TURN", []string{"-turn-min-port", "50000", "-turn-max-port", "50100"}, nil, "need the embedded TURN server"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.args, env(c.env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestHelpDocumentsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, err := Load([]string{"-help"}, env(nil), &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range settings() {
		if !strings.Contains(out.String(), s.env()) {
			t.Errorf("help does not mention %s", s.env())
		}
	}
}

func TestBaseURL(t *testing.T) {
	c := Defaults()
	if got := c.BaseURL("127.0.0.1:8080"); got != "http://127.0.0.1:8080" {
		t.Errorf("got %s", got)
	}
	c.PublicURL = "https://assist.example.com/"
	if got := c.BaseURL("0.0.0.0:443"); got != "https://assist.example.com" {
		t.Errorf("got %s", got)
	}
}
