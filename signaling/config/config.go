// Package config holds Assist's settings: defaults, then an optional JSON config file (unknown
// keys are an error), then ASSIST_* environment variables, then command-line flags; validated
// once, with errors that name the setting.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of an Assist node.
type Config struct {
	Addr      string
	PublicURL string
	// InternalURL is where the other nodes of a cluster reach this one (relayed sockets).
	InternalURL string
	DataDir     string
	NodeID      string

	TLSCert string
	TLSKey  string

	NATSURL      string
	NATSReplicas int

	S3Endpoint  string
	S3AccessKey string
	S3SecretKey string
	S3Bucket    string
	S3Region    string
	S3UseTLS    bool

	BootstrapAPIKey   string
	BootstrapEmail    string
	BootstrapPassword string

	ICEServers  []string
	ICELoopback bool

	TURNUDP           string
	TURNTCP           string
	TURNTLS           string
	TURNPublicIP      string
	TURNRelayIP       string // local address of TURN relay sockets; "": TURNPublicIP
	TURNMinPort       int    // TURN relay ports, inclusive; 0, 0: any
	TURNMaxPort       int
	TURNAllowLoopback bool
	ICETCP            string // listen address for ICE over TCP; empty: off
	UDPPort           int
	NAT1To1IPs        []string
	// AdaptiveProcs lets the node run with as many Go Ps as its CPU use needs (media/procs);
	// a GOMAXPROCS environment variable turns it off.
	AdaptiveProcs bool

	WebhookAllowPrivate bool
	// IdPAllowPrivate lets organisations' identity providers (JWKS URLs) be on loopback or
	// private networks, and over plain http.
	IdPAllowPrivate bool
	// StorageRegionSpecs are the storage-regions entries (see StorageRegions).
	StorageRegionSpecs []string

	// Live captions and translation (media/captions); captions are off without an STT URL.
	CaptionsSTTURL   string
	CaptionsSTTKey   string
	CaptionsSTTModel string
	TranslateURL     string
	TranslateKey     string

	MaxParticipants int

	APIRate              int // requests per second per API key or console sign-in
	APIBurst             int
	IPRate               int // requests per second per client IP, routes without an API key
	IPBurst              int
	LoginRate            int // sign-in attempts per minute per client IP and per email
	MaxSocketsPerIP      int
	MaxSocketsPerSession int

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	UploadTimeout     time.Duration

	SMTPHost     string
	SMTPPort     int
	SMTPUsername string
	SMTPPassword string
	SMTPStartTLS string
	EmailFrom    string
	SMSProvider  string
	SMSURL       string
	SMSAccount   string
	SMSToken     string
	SMSFrom      string
	SMSSecret    string

	LinkTTL time.Duration
	// SigningKeyRetention is how long a retired signing key still verifies tokens.
	SigningKeyRetention time.Duration
	ConsoleTTL          time.Duration
	AppointmentGrace    time.Duration
	ReminderLead        time.Duration // how long before an appointment its reminder goes out; 0: none
	// QueueTimeout is how long a customer waits unadmitted before they are told nobody could
	// take the call yet (and offered to leave a message); 0: never.
	QueueTimeout time.Duration
	// QualityInterval is how often the SFU's view of each participant's call quality is
	// sampled and kept (signaling/quality.go); 0: not sampled.
	QualityInterval time.Duration
	// PresenceOfflineGrace is how long a specialist whose consoles all closed still shows their
	// status before they show offline; QueueOfferDelay is how long a new ad hoc customer is offered
	// only to available specialists before every specialist is told (signaling/presence.go).
	PresenceOfflineGrace time.Duration
	QueueOfferDelay      time.Duration

	ShutdownTimeout time.Duration
	// DrainDelay is how long /readyz says 503 before the node stops accepting, so that load
	// balancers stop sending new clients first.
	DrainDelay time.Duration
	LogLevel   string
	LogFormat  string
}

// Defaults are the settings of the embedded single-machine platform.
func Defaults() Config {
	host, _ := os.Hostname()
	return Config{
		Addr:                "127.0.0.1:8080",
		DataDir:             "assist-data",
		NodeID:              host,
		S3Bucket:            "assist",
		S3Region:            "us-east-1",
		BootstrapEmail:      "specialist@example.com",
		ICELoopback:         true,
		AdaptiveProcs:       true,
		LinkTTL:             24 * time.Hour,
		ConsoleTTL:          8 * time.Hour,
		AppointmentGrace:    10 * time.Minute,
		NATSReplicas:        1,
		SigningKeyRetention: 90 * 24 * time.Hour,
		ReminderLead:        time.Hour,
		QueueTimeout:        10 * time.Minute,
		QualityInterval:     10 * time.Second,
		MaxParticipants:     16,
		SMTPPort:            587,
		SMTPStartTLS:        "require",
		ShutdownTimeout:     15 * time.Second,
		LogLevel:            "info",
		LogFormat:           "text",

		PresenceOfflineGrace: time.Minute,
		QueueOfferDelay:      30 * time.Second,
		APIRate:              50,
		APIBurst:             100,
		IPRate:               20,
		IPBurst:              100,
		LoginRate:            10,
		MaxSocketsPerIP:      50,
		MaxSocketsPerSession: 64,
		ReadHeaderTimeout:    10 * time.Second,
		ReadTimeout:          30 * time.Second,
		UploadTimeout:        15 * time.Minute,
	}
}

type setting struct {
	name  string // flag name and config-file key (env: ASSIST_ + upper snake)
	usage string
	set   func(c *Config, v string) error
	get   func(c *Config) string
}

func (s setting) env() string {
	return "ASSIST_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

func (s setting) fileKey() string { return strings.ReplaceAll(s.name, "-", "_") }

func text(name, usage string, field func(*Config) *string) setting {
	return setting{name: name, usage: usage,
		set: func(c *Config, v string) error { *field(c) = v; return nil },
		get: func(c *Config) string { return *field(c) }}
}

func boolean(name, usage string, field func(*Config) *bool) setting {
	return setting{name: name, usage: usage,
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			*field(c) = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*field(c)) }}
}

func integer(name, usage string, field func(*Config) *int) setting {
	return setting{name: name, usage: usage,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("want a whole number, got %q", v)
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*field(c)) }}
}

func duration(name, usage string, field func(*Config) *time.Duration) setting {
	return setting{name: name, usage: usage,
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("want a duration such as 30s or 24h, got %q", v)
			}
			*field(c) = d
			return nil
		},
		get: func(c *Config) string { return field(c).String() }}
}

func list(name, usage string, field func(*Config) *[]string) setting {
	return setting{name: name, usage: usage,
		set: func(c *Config, v string) error {
			var out []string
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					out = append(out, item)
				}
			}
			*field(c) = out
			return nil
		},
		get: func(c *Config) string { return strings.Join(*field(c), ",") }}
}

func settings() []setting {
	return []setting{
		text("addr", "listen address of the HTTP(S) server", func(c *Config) *string { return &c.Addr }),
		text("public-url", "base URL of links and the console as users reach it (default: derived from addr)", func(c *Config) *string { return &c.PublicURL }),
		text("internal-url", "base URL other Assist nodes reach this node at, to relay sockets to the node carrying a session (default: derived from addr, with node-id as the host when addr listens on every interface)", func(c *Config) *string { return &c.InternalURL }),
		text("data-dir", "directory for all local data (embedded NATS, embedded object store, spool)", func(c *Config) *string { return &c.DataDir }),
		text("node-id", "name of this node in a cluster (default: the host name)", func(c *Config) *string { return &c.NodeID }),
		text("tls-cert", "TLS certificate file (PEM); with tls-key, serve HTTPS (phones need it for the camera)", func(c *Config) *string { return &c.TLSCert }),
		text("tls-key", "TLS private key file (PEM)", func(c *Config) *string { return &c.TLSKey }),
		text("nats-url", "NATS server or cluster URLs, comma-separated (empty: run an embedded NATS server)", func(c *Config) *string { return &c.NATSURL }),
		integer("nats-replicas", "copies JetStream keeps of Assist's state, audit trail and queues (1 for one server; 3 on a cluster of three or more)", func(c *Config) *int { return &c.NATSReplicas }),
		text("s3-endpoint", "S3 endpoint host:port such as a MinIO server (empty: run an embedded S3 store)", func(c *Config) *string { return &c.S3Endpoint }),
		text("s3-access-key", "S3 access key", func(c *Config) *string { return &c.S3AccessKey }),
		text("s3-secret-key", "S3 secret key", func(c *Config) *string { return &c.S3SecretKey }),
		text("s3-bucket", "S3 bucket", func(c *Config) *string { return &c.S3Bucket }),
		text("s3-region", "S3 region", func(c *Config) *string { return &c.S3Region }),
		boolean("s3-use-tls", "talk to the S3 endpoint over HTTPS", func(c *Config) *bool { return &c.S3UseTLS }),
		text("bootstrap-api-key", "the first organisation's first API key (for automation; default: generated and printed once)", func(c *Config) *string { return &c.BootstrapAPIKey }),
		text("bootstrap-email", "sign-in email of the first specialist", func(c *Config) *string { return &c.BootstrapEmail }),
		text("bootstrap-password", "password of the first specialist (default: generated and printed once)", func(c *Config) *string { return &c.BootstrapPassword }),
		list("ice-servers", "STUN/TURN URLs handed to browsers, comma-separated (e.g. stun:stun.example.org:3478)", func(c *Config) *[]string { return &c.ICEServers }),
		boolean("ice-loopback", "offer loopback ICE candidates (for single-machine use and tests)", func(c *Config) *bool { return &c.ICELoopback }),
		text("turn-udp", "listen address of the embedded TURN server over UDP, e.g. 0.0.0.0:3478 (empty: off)", func(c *Config) *string { return &c.TURNUDP }),
		text("turn-tcp", "listen address of the embedded TURN server over TCP, e.g. 0.0.0.0:3478 (empty: off)", func(c *Config) *string { return &c.TURNTCP }),
		text("turn-tls", "listen address of TURN over TLS with tls-cert, e.g. 0.0.0.0:5349 or :443 (empty: off)", func(c *Config) *string { return &c.TURNTLS }),
		text("turn-public-ip", "the IP address browsers reach this node's TURN relays at (default: the host of addr, or 127.0.0.1)", func(c *Config) *string { return &c.TURNPublicIP }),
		text("turn-relay-ip", "local IP address TURN relay sockets are bound to, e.g. 0.0.0.0 behind 1:1 NAT (default: turn-public-ip)", func(c *Config) *string { return &c.TURNRelayIP }),
		integer("turn-min-port", "lowest UDP port of TURN relays, with turn-max-port (0: any port)", func(c *Config) *int { return &c.TURNMinPort }),
		integer("turn-max-port", "highest UDP port of TURN relays, with turn-min-port (0: any port)", func(c *Config) *int { return &c.TURNMaxPort }),
		boolean("turn-allow-loopback", "let TURN relay to loopback addresses (single-machine use and tests only)", func(c *Config) *bool { return &c.TURNAllowLoopback }),
		boolean("adaptive-procs", "run the Go scheduler with as many processors as the node's CPU use needs, instead of one per core (fewer idle-thread wake-ups per forwarded packet; off when GOMAXPROCS is set)", func(c *Config) *bool { return &c.AdaptiveProcs }),
		text("ice-tcp", "listen address for media over TCP (ICE-TCP passive candidates) for networks that block UDP, e.g. 0.0.0.0:3479 (empty: UDP and TURN only)", func(c *Config) *string { return &c.ICETCP }),
		integer("udp-port", "one UDP port for all media (0: one shared port the kernel chooses); every peer connection shares it, so a packet's copies leave in one sendmmsg", func(c *Config) *int { return &c.UDPPort }),
		list("nat-ips", "public IP addresses of this node to advertise for media, comma-separated", func(c *Config) *[]string { return &c.NAT1To1IPs }),
		text("captions-stt-url", "base URL of an OpenAI-compatible speech-to-text server (POST /v1/audio/transcriptions: OpenAI, whisper.cpp, faster-whisper) for live captions (empty: no captions)", func(c *Config) *string { return &c.CaptionsSTTURL }),
		text("captions-stt-key", "API key sent to the speech-to-text server as a Bearer token (empty: none)", func(c *Config) *string { return &c.CaptionsSTTKey }),
		text("captions-stt-model", "speech-to-text model name sent with each utterance (empty: whisper-1)", func(c *Config) *string { return &c.CaptionsSTTModel }),
		text("translate-url", "base URL of a LibreTranslate server (POST /translate) that translates captions and chat into each reader's language (empty: no translation)", func(c *Config) *string { return &c.TranslateURL }),
		text("translate-key", "LibreTranslate API key (empty: none)", func(c *Config) *string { return &c.TranslateKey }),
		boolean("idp-allow-private", "let organisations' identity providers (JWKS URLs) be on loopback or private networks, over plain http too (closed networks and tests only)", func(c *Config) *bool { return &c.IdPAllowPrivate }),
		list("storage-regions", "more object stores for data residency, comma-separated name=http(s)://KEY:SECRET@host:port/bucket[?region=r] entries; organisations pinned to a name keep their objects there (empty: only the default store)", func(c *Config) *[]string { return &c.StorageRegionSpecs }),
		boolean("webhook-allow-private", "let webhook endpoints be on loopback or private networks (closed networks and tests only)", func(c *Config) *bool { return &c.WebhookAllowPrivate }),
		text("smtp-host", "SMTP server for appointment emails (empty: no email)", func(c *Config) *string { return &c.SMTPHost }),
		integer("smtp-port", "SMTP port", func(c *Config) *int { return &c.SMTPPort }),
		text("smtp-username", "SMTP user (AUTH PLAIN, only over TLS)", func(c *Config) *string { return &c.SMTPUsername }),
		text("smtp-password", "SMTP password", func(c *Config) *string { return &c.SMTPPassword }),
		text("smtp-starttls", "require, opportunistic or none", func(c *Config) *string { return &c.SMTPStartTLS }),
		text("email-from", "sender address of appointment emails", func(c *Config) *string { return &c.EmailFrom }),
		text("sms-provider", "twilio (a Twilio-style Messages API) or webhook (a signed JSON POST); empty: no SMS", func(c *Config) *string { return &c.SMSProvider }),
		text("sms-url", "the SMS provider's base URL (twilio) or endpoint (webhook)", func(c *Config) *string { return &c.SMSURL }),
		text("sms-account", "the SMS provider's account id (twilio)", func(c *Config) *string { return &c.SMSAccount }),
		text("sms-token", "the SMS provider's auth token (twilio)", func(c *Config) *string { return &c.SMSToken }),
		text("sms-from", "the SMS sender number or id (twilio)", func(c *Config) *string { return &c.SMSFrom }),
		text("sms-secret", "the shared secret that signs webhook SMS requests (webhook)", func(c *Config) *string { return &c.SMSSecret }),
		integer("max-participants", "most participants one session holds (specialists, customers and experts together)", func(c *Config) *int { return &c.MaxParticipants }),
		integer("api-rate", "API requests per second per API key or console sign-in (beyond: 429 with Retry-After)", func(c *Config) *int { return &c.APIRate }),
		integer("api-burst", "API requests per API key or console sign-in allowed in a burst above api-rate", func(c *Config) *int { return &c.APIBurst }),
		integer("ip-rate", "requests per second per client IP on routes without an API key (sign-in, links, signaling, uploads, downloads)", func(c *Config) *int { return &c.IPRate }),
		integer("ip-burst", "requests per client IP allowed in a burst above ip-rate", func(c *Config) *int { return &c.IPBurst }),
		integer("login-rate", "sign-in attempts per minute per client IP and per email", func(c *Config) *int { return &c.LoginRate }),
		integer("max-sockets-per-ip", "most signaling sockets open at once from one client IP (an IPv6 /64)", func(c *Config) *int { return &c.MaxSocketsPerIP }),
		integer("max-sockets-per-session", "most signaling sockets joined to one session at once", func(c *Config) *int { return &c.MaxSocketsPerSession }),
		duration("read-header-timeout", "how long a client may take to send a request's headers (slow clients are cut off)", func(c *Config) *time.Duration { return &c.ReadHeaderTimeout }),
		duration("read-timeout", "how long a request may take to arrive, and the longest pause inside an upload or a download", func(c *Config) *time.Duration { return &c.ReadTimeout }),
		duration("upload-timeout", "how long one upload or download may take in all, while it keeps moving", func(c *Config) *time.Duration { return &c.UploadTimeout }),
		duration("signing-key-retention", "how long a retired signing key still verifies links and sign-ins after a rotation (keep it above link-ttl and appointment windows)", func(c *Config) *time.Duration { return &c.SigningKeyRetention }),
		duration("link-ttl", "how long session links stay valid", func(c *Config) *time.Duration { return &c.LinkTTL }),
		duration("console-ttl", "how long a console sign-in lasts", func(c *Config) *time.Duration { return &c.ConsoleTTL }),
		duration("appointment-grace", "how early before and how late after its window an appointment's link opens", func(c *Config) *time.Duration { return &c.AppointmentGrace }),
		duration("reminder-lead", "how long before an appointment starts its customer gets a reminder with the link (0: no reminders; none for one booked or moved later than that)", func(c *Config) *time.Duration { return &c.ReminderLead }),
		duration("quality-interval", "how often the SFU samples each participant's call quality (loss, jitter, round trip, bitrate) and keeps it with the session (0: never; pages still send their own)", func(c *Config) *time.Duration { return &c.QualityInterval }),
		duration("queue-timeout", "how long a customer waits unadmitted before the page says nobody could take the call yet and offers to leave a message or keep waiting (0: never)", func(c *Config) *time.Duration { return &c.QueueTimeout }),
		duration("presence-offline-grace", "how long a specialist whose consoles all closed keeps their presence before colleagues see them offline (a reload or a short network drop does not flicker)", func(c *Config) *time.Duration { return &c.PresenceOfflineGrace }),
		duration("queue-offer-delay", "how long a newly waiting ad hoc customer is offered only to available specialists before every specialist of the organisation is told (0: everyone at once)", func(c *Config) *time.Duration { return &c.QueueOfferDelay }),
		duration("drain-delay", "how long /readyz answers 503 before a shutdown stops accepting connections (give load balancers time to notice; 0: at once)", func(c *Config) *time.Duration { return &c.DrainDelay }),
		duration("shutdown-timeout", "how long a graceful shutdown may drain before it forces", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
		text("log-level", "debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
		text("log-format", "text or json", func(c *Config) *string { return &c.LogFormat }),
	}
}

// ErrHelp is returned by Load when -help was asked for; the usage has been printed.
var ErrHelp = flag.ErrHelp

// Load builds the configuration from defaults, the config file, the environment and args.
func Load(args []string, getenv func(string) string, usageOut io.Writer) (Config, error) {
	all := settings()
	fs := flag.NewFlagSet("assist", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	configFile := fs.String("config", getenv("ASSIST_CONFIG"), "JSON config file; keys are the settings' names with underscores (env ASSIST_CONFIG)")
	defaults := Defaults()
	for _, s := range all {
		fs.String(s.name, s.get(&defaults), s.usage+" (env "+s.env()+")")
	}
	fs.Usage = func() {
		fmt.Fprintf(usageOut, "Usage: assist [flags]\n\nStarts an Assist node. Every flag can also be set by its ASSIST_* environment\nvariable or a key of the config file; flags win over the environment, which wins over the file.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	cfg := Defaults()
	if *configFile != "" {
		if err := applyFile(&cfg, all, *configFile); err != nil {
			return Config{}, err
		}
	}
	for _, s := range all {
		if v, ok := lookupEnv(getenv, s.env()); ok {
			if err := s.set(&cfg, v); err != nil {
				return Config{}, fmt.Errorf("%s: %w", s.env(), err)
			}
		}
	}
	var flagErr error
	fs.Visit(func(f *flag.Flag) {
		for _, s := range all {
			if s.name == f.Name && flagErr == nil {
				if err := s.set(&cfg, f.Value.String()); err != nil {
					flagErr = fmt.Errorf("-%s: %w", s.name, err)
				}
			}
		}
	})
	if flagErr != nil {
		return Config{}, flagErr
	}
	return cfg, cfg.Validate()
}

func lookupEnv(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func applyFile(cfg *Config, all []setting, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	known := map[string]setting{}
	for _, s := range all {
		known[s.fileKey()] = s
	}
	for key, value := range raw {
		s, ok := known[key]
		if !ok {
			return fmt.Errorf("config file %s: unknown setting %q", path, key)
		}
		text, err := scalarText(value)
		if err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, key, err)
		}
		if err := s.set(cfg, text); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, key, err)
		}
	}
	return nil
}

func scalarText(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var items []string
	if err := json.Unmarshal(v, &items); err == nil {
		return strings.Join(items, ","), nil
	}
	var scalar any
	if err := json.Unmarshal(v, &scalar); err != nil {
		return "", err
	}
	switch scalar.(type) {
	case bool, float64:
		return string(v), nil
	}
	return "", errors.New("want a string, number, boolean or list of strings")
}

// Validate checks the settings together; the error names the setting.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr: %q is not host:port: %v", c.Addr, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls-cert and tls-key: set both or neither")
	}
	for _, u := range []struct{ name, value string }{{"captions-stt-url", c.CaptionsSTTURL}, {"translate-url", c.TranslateURL}} {
		if u.value == "" {
			continue
		}
		if parsed, err := url.Parse(u.value); err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return fmt.Errorf("%s: %q is not an http(s) URL", u.name, u.value)
		}
	}
	if c.TranslateURL != "" && c.CaptionsSTTURL == "" {
		return errors.New("translate-url: needs captions-stt-url (translation works on captions and chat of a captioned call)")
	}
	if c.InternalURL != "" {
		if u, err := url.Parse(c.InternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("internal-url: %q is not an http(s) URL", c.InternalURL)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("public-url: %q is not an http(s) URL", c.PublicURL)
		}
	}
	if c.DataDir == "" {
		return errors.New("data-dir: must not be empty")
	}
	if c.S3Endpoint != "" && (c.S3AccessKey == "" || c.S3SecretKey == "") {
		return errors.New("s3-access-key and s3-secret-key: required with s3-endpoint")
	}
	if c.S3Bucket == "" {
		return errors.New("s3-bucket: must not be empty")
	}
	if _, err := c.StorageRegions(); err != nil {
		return err
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		return fmt.Errorf("udp-port: %d is not a port", c.UDPPort)
	}
	for _, ip := range c.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("nat-ips: %q is not an IP address", ip)
		}
	}
	for _, u := range c.ICEServers {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return fmt.Errorf("ice-servers: %q is not a stun:, turn: or turns: URL", u)
		}
	}
	if c.TURNTLS != "" && !c.TLS() {
		return errors.New("turn-tls: needs tls-cert and tls-key")
	}
	if c.TURNPublicIP != "" && net.ParseIP(c.TURNPublicIP) == nil {
		return fmt.Errorf("turn-public-ip: %q is not an IP address", c.TURNPublicIP)
	}
	if err := c.validateTURNRelays(); err != nil {
		return err
	}
	switch c.SMTPStartTLS {
	case "require", "opportunistic", "none":
	default:
		return fmt.Errorf("smtp-starttls: %q is not require, opportunistic or none", c.SMTPStartTLS)
	}
	if c.SMTPHost != "" && c.EmailFrom == "" {
		return errors.New("email-from: required with smtp-host")
	}
	switch c.SMSProvider {
	case "":
	case "twilio":
		if c.SMSAccount == "" || c.SMSToken == "" || c.SMSFrom == "" {
			return errors.New("sms-account, sms-token and sms-from: required with sms-provider twilio")
		}
	case "webhook":
		if c.SMSURL == "" || len(c.SMSSecret) < 16 {
			return errors.New("sms-url and sms-secret (16+ characters): required with sms-provider webhook")
		}
	default:
		return fmt.Errorf("sms-provider: %q is not twilio or webhook", c.SMSProvider)
	}
	if c.NATSReplicas < 1 || c.NATSReplicas > 5 {
		return fmt.Errorf("nats-replicas: want 1..5, got %d", c.NATSReplicas)
	}
	if c.NATSReplicas > 1 && c.NATSURL == "" {
		return errors.New("nats-replicas: more than 1 needs a NATS cluster (nats-url); the embedded server is one")
	}
	if c.MaxParticipants < 2 || c.MaxParticipants > 1000 {
		return fmt.Errorf("max-participants: want 2..1000, got %d", c.MaxParticipants)
	}
	for _, n := range []struct {
		name  string
		value int
	}{
		{"api-rate", c.APIRate}, {"api-burst", c.APIBurst}, {"ip-rate", c.IPRate}, {"ip-burst", c.IPBurst},
		{"login-rate", c.LoginRate}, {"max-sockets-per-ip", c.MaxSocketsPerIP}, {"max-sockets-per-session", c.MaxSocketsPerSession},
	} {
		if n.value < 1 {
			return fmt.Errorf("%s: must be at least 1, got %d", n.name, n.value)
		}
	}
	if c.PresenceOfflineGrace < 0 || c.PresenceOfflineGrace > time.Hour {
		return errors.New("presence-offline-grace: want 0..1h")
	}
	if c.QueueOfferDelay < 0 || c.QueueOfferDelay > time.Hour {
		return errors.New("queue-offer-delay: want 0..1h")
	}
	if c.QueueTimeout < 0 {
		return errors.New("queue-timeout: must not be negative (0: never)")
	}
	if c.QualityInterval != 0 && (c.QualityInterval < 100*time.Millisecond || c.QualityInterval > time.Hour) {
		return errors.New("quality-interval: 0 (never) or 100ms..1h")
	}
	if c.ReadHeaderTimeout <= 0 {
		return errors.New("read-header-timeout: must be positive")
	}
	if c.ReadTimeout < c.ReadHeaderTimeout {
		return errors.New("read-timeout: must be at least read-header-timeout")
	}
	if c.UploadTimeout < c.ReadTimeout {
		return errors.New("upload-timeout: must be at least read-timeout")
	}
	if c.SigningKeyRetention < time.Hour {
		return fmt.Errorf("signing-key-retention: want at least 1h, got %s", c.SigningKeyRetention)
	}
	if c.LinkTTL < time.Minute {
		return errors.New("link-ttl: must be at least 1m")
	}
	if c.ConsoleTTL < time.Minute {
		return errors.New("console-ttl: must be at least 1m")
	}
	if c.AppointmentGrace < 0 || c.AppointmentGrace > 24*time.Hour {
		return errors.New("appointment-grace: must be between 0 and 24h")
	}
	if c.ReminderLead < 0 || c.ReminderLead > 7*24*time.Hour {
		return errors.New("reminder-lead: must be between 0 (no reminders) and 168h")
	}
	if c.DrainDelay < 0 {
		return errors.New("drain-delay: must not be negative")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("shutdown-timeout: must be positive")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log-format: %q is not text or json", c.LogFormat)
	}
	if c.BootstrapAPIKey != "" && !strings.HasPrefix(c.BootstrapAPIKey, "ak_") {
		return errors.New(`bootstrap-api-key: must start with "ak_"`)
	}
	if c.BootstrapPassword != "" && len(c.BootstrapPassword) < 8 {
		return errors.New("bootstrap-password: must be at least 8 characters")
	}
	return nil
}

// TLS reports whether the node serves HTTPS.
func (c *Config) TLS() bool { return c.TLSCert != "" }

// BaseURL is the public base of links: public-url, or derived from the listen address.
func (c *Config) BaseURL(listenAddr string) string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	scheme := "http"
	if c.TLS() {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(listenAddr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// NodeURL is where the other nodes reach this one: internal-url, or derived from the listen
// address (node-id names the host when the address is every interface's, as in containers
// where the node id is the host name).
func (c *Config) NodeURL(listenAddr string) string {
	if c.InternalURL != "" {
		return strings.TrimRight(c.InternalURL, "/")
	}
	scheme := "http"
	if c.TLS() {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(listenAddr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = c.NodeID
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// Path resolves a name under the data directory.
func (c *Config) Path(elem ...string) string {
	return filepath.Join(append([]string{c.DataDir}, elem...)...)
}

// TURN reports whether the embedded TURN server runs.
func (c *Config) TURN() bool { return c.TURNUDP != "" || c.TURNTCP != "" || c.TURNTLS != "" }

// validateTURNRelays checks where TURN relay sockets go: an IP address of the same family as
// the public one, and a port range given whole, in order, above the privileged ports.
func (c *Config) validateTURNRelays() error {
	if c.TURNRelayIP != "" {
		relay := net.ParseIP(c.TURNRelayIP)
		if relay == nil {
			return fmt.Errorf("turn-relay-ip: %q is not an IP address", c.TURNRelayIP)
		}
		if public := net.ParseIP(c.TURNPublicIP); public != nil && (relay.To4() == nil) != (public.To4() == nil) {
			return fmt.Errorf("turn-relay-ip: %s and turn-public-ip %s are of different address families", c.TURNRelayIP, c.TURNPublicIP)
		}
	}
	for _, p := range []struct {
		name string
		port int
	}{{"turn-min-port", c.TURNMinPort}, {"turn-max-port", c.TURNMaxPort}} {
		if p.port != 0 && (p.port < 1024 || p.port > 65535) {
			return fmt.Errorf("%s: want 1024..65535 (or 0 for any port), got %d", p.name, p.port)
		}
	}
	switch {
	case (c.TURNMinPort == 0) != (c.TURNMaxPort == 0):
		return errors.New("turn-min-port and turn-max-port: set both or neither")
	case c.TURNMinPort > c.TURNMaxPort:
		return fmt.Errorf("turn-min-port: %d is above turn-max-port %d", c.TURNMinPort, c.TURNMaxPort)
	case (c.TURNRelayIP != "" || c.TURNMinPort != 0) && !c.TURN():
		return errors.New("turn-relay-ip, turn-min-port and turn-max-port: need the embedded TURN server (turn-udp, turn-tcp or turn-tls)")
	}
	return nil
}
