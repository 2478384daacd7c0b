package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// In-session tools: chat, annotation and pointer, remote camera control, snapshots, files,
// geolocation, screen sharing. A client sends the *Send form; everyone concerned receives the
// message with its Meta (who, when, id), as recorded in the session's timeline.
const (
	TypeChat                Type = "chat"
	TypeAnnotation          Type = "annotation"
	TypePointer             Type = "pointer"
	TypeCameraControl       Type = "camera_control"
	TypeCameraCapabilities  Type = "camera_capabilities"
	TypeCameraControlResult Type = "camera_control_result"
	TypeSnapshotRequest     Type = "snapshot_request"
	TypeGeolocationRequest  Type = "geolocation_request"
	TypeGeolocation         Type = "geolocation"
	TypeScreenShare         Type = "screen_share"

	// Server → client only.
	TypeSnapshotTaken Type = "snapshot_taken"
	TypeFileShared    Type = "file_shared"
	TypeHistory       Type = "history"
)

// Limits of the tools' messages.
const (
	MaxChatLength    = 2000
	MaxStrokePoints  = 2000
	maxTargetLen     = 80
	maxColorLen      = 32
	maxAnnotationTxt = 200
)

// Meta says who sent a relayed message and when; ID orders and deduplicates.
type Meta struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	From Sender    `json:"from"`
}

// Sender is a participant as others see them.
type Sender struct {
	ParticipantID string `json:"participant_id"`
	Role          string `json:"role"`
	Name          string `json:"name"`
}

// ChatSend is a chat message from a client.
type ChatSend struct {
	Text string `json:"text"`
}

// Chat is a chat message as delivered and kept.
type Chat struct {
	Meta
	Text string `json:"text"`
	ChatTranslations
}

// Stroke is one annotation mark. Coordinates are normalised to the video frame (or snapshot):
// 0,0 is the top left corner and 1,1 the bottom right, whatever the screen.
type Stroke struct {
	ID     string       `json:"id"`
	Tool   string       `json:"tool"` // freehand, arrow, circle, text
	Color  string       `json:"color"`
	Width  float64      `json:"width"` // in frame widths (0..0.1)
	Points [][2]float64 `json:"points"`
	Text   string       `json:"text,omitempty"`
}

// AnnotationSend draws, undoes or clears marks on a target: "video:<participant id>" or
// "snapshot:<snapshot id>".
type AnnotationSend struct {
	Target string  `json:"target"`
	Action string  `json:"action"` // stroke, undo, clear
	Stroke *Stroke `json:"stroke,omitempty"`
}

// Annotation is an annotation action as delivered and kept.
type Annotation struct {
	Meta
	AnnotationSend
}

// PointerSend moves the live pointer; it is throttled by clients and never kept.
type PointerSend struct {
	Target  string  `json:"target"`
	X       float64 `json:"x"`
	Y       float64 `json:"y"`
	Visible bool    `json:"visible"`
}

// Pointer is the live pointer as delivered.
type Pointer struct {
	Meta
	PointerSend
}

// CameraControlSend asks the customer's page to change its camera.
type CameraControlSend struct {
	Command string   `json:"command"` // flip, torch, zoom
	Value   *float64 `json:"value,omitempty"`
}

// CameraControl is a camera command as delivered and kept.
type CameraControl struct {
	Meta
	CameraControlSend
}

// CameraCapabilitiesSend is what the customer's camera can do, as its page probed it.
type CameraCapabilitiesSend struct {
	CanFlip    bool    `json:"can_flip"`
	FacingMode string  `json:"facing_mode,omitempty"`
	Torch      bool    `json:"torch"`
	Zoom       bool    `json:"zoom"`
	ZoomMin    float64 `json:"zoom_min,omitempty"`
	ZoomMax    float64 `json:"zoom_max,omitempty"`
	ZoomStep   float64 `json:"zoom_step,omitempty"`
	ZoomValue  float64 `json:"zoom_value,omitempty"`
}

// CameraCapabilities as delivered.
type CameraCapabilities struct {
	Meta
	CameraCapabilitiesSend
}

// CameraControlResultSend says whether the customer's page applied a command.
type CameraControlResultSend struct {
	Command string `json:"command"`
	Applied bool   `json:"applied"`
	Reason  string `json:"reason,omitempty"`
}

// CameraControlResult as delivered and kept.
type CameraControlResult struct {
	Meta
	CameraControlResultSend
}

// Request is a bare request (snapshot_request, geolocation_request) as delivered and kept.
type Request struct {
	Meta
}

// GeolocationSend is the customer's answer to a location request: a position, or declined.
type GeolocationSend struct {
	Declined  bool    `json:"declined,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	Latitude  float64 `json:"latitude,omitempty"`
	Longitude float64 `json:"longitude,omitempty"`
	Accuracy  float64 `json:"accuracy,omitempty"` // metres
	Timestamp int64   `json:"timestamp,omitempty"`
}

// Geolocation as delivered and kept.
type Geolocation struct {
	Meta
	GeolocationSend
}

// ScreenShareSend says that the sender started or stopped sharing a screen; the track itself
// travels through the SFU.
type ScreenShareSend struct {
	Active  bool   `json:"active"`
	TrackID string `json:"track_id,omitempty"`
}

// ScreenShare as delivered.
type ScreenShare struct {
	Meta
	ScreenShareSend
}

// SnapshotInfo describes a photo taken from the customer's camera.
type SnapshotInfo struct {
	ID          string    `json:"id"`
	Width       int       `json:"width"`
	Height      int       `json:"height"`
	Size        int64     `json:"size"`
	ContentType string    `json:"content_type"`
	TakenAt     time.Time `json:"taken_at"`
	URL         string    `json:"url"` // a short-lived signed download URL
}

// SnapshotTaken announces a new snapshot.
type SnapshotTaken struct {
	Meta
	Snapshot SnapshotInfo `json:"snapshot"`
}

// FileInfo describes a shared file.
type FileInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	URL         string `json:"url"` // a short-lived signed download URL
}

// FileShared announces a shared file.
type FileShared struct {
	Meta
	File FileInfo `json:"file"`
}

// History replays the session's kept timeline (chat, annotations, snapshots, files, ...) to
// a client that joins or comes back, oldest first.
type History struct {
	Entries []Envelope `json:"entries"`
}

func (m *ChatSend) validate() error {
	m.Text = strings.TrimSpace(m.Text)
	switch {
	case m.Text == "":
		return errors.New("text is empty")
	case utf8.RuneCountInString(m.Text) > MaxChatLength:
		return fmt.Errorf("text is longer than %d characters", MaxChatLength)
	case !utf8.ValidString(m.Text):
		return errors.New("text is not UTF-8")
	}
	return nil
}

func validateTarget(target string) error {
	kind, id, ok := strings.Cut(target, ":")
	if !ok || (kind != "video" && kind != "snapshot") || id == "" || len(target) > maxTargetLen {
		return errors.New(`target must be "video:<participant id>" or "snapshot:<snapshot id>"`)
	}
	return nil
}

func unit(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= 1 }

func (m *AnnotationSend) validate() error {
	if err := validateTarget(m.Target); err != nil {
		return err
	}
	switch m.Action {
	case "undo", "clear":
		if m.Stroke != nil {
			return fmt.Errorf("%s takes no stroke", m.Action)
		}
		return nil
	case "stroke":
	default:
		return errors.New(`action must be "stroke", "undo" or "clear"`)
	}
	s := m.Stroke
	if s == nil {
		return errors.New("stroke is required")
	}
	switch s.Tool {
	case "freehand", "arrow", "circle", "text":
	default:
		return errors.New("tool must be freehand, arrow, circle or text")
	}
	if s.ID == "" || len(s.ID) > maxIDLen || len(s.Color) > maxColorLen || !validColor(s.Color) {
		return errors.New("stroke needs an id and a #rrggbb colour")
	}
	if math.IsNaN(s.Width) || s.Width <= 0 || s.Width > 0.1 {
		return errors.New("width must be in (0, 0.1] of the frame width")
	}
	if len(s.Points) == 0 || len(s.Points) > MaxStrokePoints {
		return fmt.Errorf("a stroke has 1 to %d points", MaxStrokePoints)
	}
	for _, p := range s.Points {
		if !unit(p[0]) || !unit(p[1]) {
			return errors.New("points are normalised to the frame: 0 to 1")
		}
	}
	if (s.Tool == "arrow" || s.Tool == "circle") && len(s.Points) != 2 {
		return errors.New("arrows and circles have exactly 2 points")
	}
	if s.Tool == "text" && (s.Text == "" || utf8.RuneCountInString(s.Text) > maxAnnotationTxt) {
		return fmt.Errorf("text marks need 1 to %d characters", maxAnnotationTxt)
	}
	return nil
}

func validColor(c string) bool {
	if len(c) != 7 || c[0] != '#' {
		return false
	}
	for _, r := range c[1:] {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

func (m *PointerSend) validate() error {
	if err := validateTarget(m.Target); err != nil {
		return err
	}
	if !unit(m.X) || !unit(m.Y) {
		return errors.New("x and y are normalised to the frame: 0 to 1")
	}
	return nil
}

func (m *CameraControlSend) validate() error {
	switch m.Command {
	case "flip":
		return nil
	case "torch":
		if m.Value == nil || (*m.Value != 0 && *m.Value != 1) {
			return errors.New("torch takes value 1 (on) or 0 (off)")
		}
	case "zoom":
		if m.Value == nil || math.IsNaN(*m.Value) || *m.Value <= 0 || *m.Value > 100 {
			return errors.New("zoom takes a positive value")
		}
	default:
		return errors.New("command must be flip, torch or zoom")
	}
	return nil
}

func (m *CameraCapabilitiesSend) validate() error {
	for _, v := range []float64{m.ZoomMin, m.ZoomMax, m.ZoomStep, m.ZoomValue} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1000 {
			return errors.New("zoom figures are out of range")
		}
	}
	if len(m.FacingMode) > 32 {
		return errors.New("facing_mode is too long")
	}
	return nil
}

func (m *CameraControlResultSend) validate() error {
	if m.Command != "flip" && m.Command != "torch" && m.Command != "zoom" {
		return errors.New("command must be flip, torch or zoom")
	}
	if len(m.Reason) > maxReasonLen {
		return errors.New("reason is too long")
	}
	return nil
}

func (m *GeolocationSend) validate() error {
	if m.Declined {
		if len(m.Reason) > maxReasonLen {
			return errors.New("reason is too long")
		}
		return nil
	}
	switch {
	case math.IsNaN(m.Latitude) || m.Latitude < -90 || m.Latitude > 90:
		return errors.New("latitude must be within -90..90")
	case math.IsNaN(m.Longitude) || m.Longitude < -180 || m.Longitude > 180:
		return errors.New("longitude must be within -180..180")
	case math.IsNaN(m.Accuracy) || m.Accuracy < 0 || m.Accuracy > 1e7:
		return errors.New("accuracy must be a distance in metres")
	}
	return nil
}

func (m *ScreenShareSend) validate() error {
	if len(m.TrackID) > 128 {
		return errors.New("track_id is too long")
	}
	return nil
}

// TypeRecording tells everyone in the call that recording started or stopped (server only).
const TypeRecording Type = "recording"

// Recording is the recording indicator. Before a recording starts everyone is told with
// Starting set (and Active false); only then is anything written.
type Recording struct {
	Meta
	Active      bool   `json:"active"`
	Starting    bool   `json:"starting,omitempty"`
	RecordingID string `json:"recording_id,omitempty"`
}

// TypeStorage tells specialists how far uploads to object storage are behind (server only):
// sent when the number of recording segments waiting for storage changes.
const TypeStorage Type = "storage"

// Storage is the upload backlog on the node hosting the call.
type Storage struct {
	UploadsBehind int `json:"uploads_behind"`
}

// TypeRecord asks to start or stop recording the call (specialists).
const TypeRecord Type = "record"

// RecordSend starts (active) or stops recording.
type RecordSend struct {
	Active bool `json:"active"`
}

func (m *RecordSend) validate() error { return nil }

// TypeDiagnostics carries the result of the customer's setup test (camera, microphone,
// speaker, and the network through the echo test) to the specialists; kept in the timeline.
const TypeDiagnostics Type = "diagnostics"

// Verdicts of a setup test, for the customer and the specialist alike.
const (
	VerdictGood        = "good"          // a call will work well
	VerdictMayBePoor   = "may_be_poor"   // a call will work, but picture or sound may suffer
	VerdictWillNotWork = "will_not_work" // no call is possible as things are
)

// Device check results (DiagnosticsSend.Camera, .Microphone).
const (
	DeviceOK       = "ok"       // works (a microphone: sound was picked up)
	DeviceSilent   = "silent"   // a microphone that picked up nothing
	DeviceBlocked  = "blocked"  // the browser or the user refused access
	DeviceMissing  = "missing"  // no such device
	DeviceError    = "error"    // present but could not be started (in use, ...)
	DeviceUntested = "untested" // not checked
)

// DiagnosticsNetwork is what the echo test measured. Figures the browser could not measure
// are absent. Transport is how media travelled: "udp" or "tcp" directly, "turn-udp",
// "turn-tcp" or "turn-tls" through the TURN relay, "none" if no connection was made.
type DiagnosticsNetwork struct {
	Transport     string   `json:"transport"`
	CandidateType string   `json:"candidate_type,omitempty"` // host, srflx, prflx, relay
	RTTMs         *float64 `json:"rtt_ms,omitempty"`
	JitterMs      *float64 `json:"jitter_ms,omitempty"`
	LossPct       *float64 `json:"loss_pct,omitempty"`       // 0..100, both ways
	SendKbps      *float64 `json:"send_kbps,omitempty"`      // what the browser sent, measured
	AvailableKbps *float64 `json:"available_kbps,omitempty"` // the browser's own send estimate
}

// DiagnosticsSend is the customer page's setup test result.
type DiagnosticsSend struct {
	Verdict    string              `json:"verdict"`
	Problems   []string            `json:"problems,omitempty"` // DiagnosticsProblems, most serious first
	Camera     string              `json:"camera"`
	Microphone string              `json:"microphone"`
	AudioLevel *float64            `json:"audio_level,omitempty"` // the loudest the microphone got, 0..1
	Speaker    string              `json:"speaker,omitempty"`     // "played", "failed" or "untested"
	Network    *DiagnosticsNetwork `json:"network,omitempty"`     // absent if not tested
	DurationMs int                 `json:"duration_ms"`
}

// Diagnostics as delivered and kept.
type Diagnostics struct {
	Meta
	DiagnosticsSend
}

// DiagnosticsProblems are the problem codes a setup test may report.
var DiagnosticsProblems = []string{
	"no_connection", "camera_blocked", "camera_missing", "camera_error", "microphone_blocked",
	"microphone_missing", "microphone_error", "microphone_silent", "high_loss", "high_rtt",
	"high_jitter", "low_bitrate", "relay", "tcp", "speaker_failed",
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// figure checks an optional measurement: absent, or finite within 0..limit.
func figure(name string, v *float64, limit float64) error {
	if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 || *v > limit) {
		return fmt.Errorf("%s must be within 0..%g", name, limit)
	}
	return nil
}

func (m *DiagnosticsSend) validate() error {
	if !oneOf(m.Verdict, VerdictGood, VerdictMayBePoor, VerdictWillNotWork) {
		return errors.New("verdict must be good, may_be_poor or will_not_work")
	}
	devices := []string{DeviceOK, DeviceSilent, DeviceBlocked, DeviceMissing, DeviceError, DeviceUntested}
	if !oneOf(m.Camera, devices...) || m.Camera == DeviceSilent || !oneOf(m.Microphone, devices...) {
		return errors.New("camera and microphone must be ok, blocked, missing, error or untested (a microphone may be silent)")
	}
	if m.Speaker != "" && !oneOf(m.Speaker, "played", "failed", "untested") {
		return errors.New("speaker must be played, failed or untested")
	}
	if len(m.Problems) > len(DiagnosticsProblems) {
		return errors.New("too many problems")
	}
	for _, p := range m.Problems {
		if !oneOf(p, DiagnosticsProblems...) {
			return fmt.Errorf("unknown problem %q", truncate(p, 40))
		}
	}
	if err := figure("audio_level", m.AudioLevel, 1); err != nil {
		return err
	}
	if m.DurationMs < 0 || m.DurationMs > 600_000 {
		return errors.New("duration_ms must be within 0..600000")
	}
	if n := m.Network; n != nil {
		if !oneOf(n.Transport, "udp", "tcp", "turn-udp", "turn-tcp", "turn-tls", "none") {
			return errors.New("transport must be udp, tcp, turn-udp, turn-tcp, turn-tls or none")
		}
		if n.CandidateType != "" && !oneOf(n.CandidateType, "host", "srflx", "prflx", "relay") {
			return errors.New("candidate_type must be host, srflx, prflx or relay")
		}
		for _, f := range []struct {
			name  string
			v     *float64
			limit float64
		}{
			{"rtt_ms", n.RTTMs, 60_000}, {"jitter_ms", n.JitterMs, 60_000}, {"loss_pct", n.LossPct, 100},
			{"send_kbps", n.SendKbps, 1_000_000}, {"available_kbps", n.AvailableKbps, 1_000_000},
		} {
			if err := figure(f.name, f.v, f.limit); err != nil {
				return err
			}
		}
	}
	return nil
}

// The echo test socket (GET /v1/echo) takes no session: the client sends echo_start (with a
// customer link's token, if it has one, so that the TURN credential it gets names that
// session), the server answers echo_ready with the ICE servers and the time the test may
// take, then the browser offers and description and candidate messages flow both ways as on
// /v1/signal. The server sends echo_ended, then closes the socket, when the time is up or the
// connection ends.
const (
	TypeEchoStart Type = "echo_start" // client → server, first and once
	TypeEchoReady Type = "echo_ready" // server → client
	TypeEchoEnded Type = "echo_ended" // server → client, last
)

// MaxEchoSeconds is the longest echo test a client may ask for.
const MaxEchoSeconds = 60

// EchoStart starts an echo test.
type EchoStart struct {
	Token   string `json:"token,omitempty"`   // a session link's token, optional
	Seconds int    `json:"seconds,omitempty"` // how long the test needs; 0: the server's default
}

// EchoReady says the echo is waiting for the browser's offer.
type EchoReady struct {
	ICEServers []ICEServer `json:"ice_servers"`
	Seconds    int         `json:"seconds"` // the echo closes this long after echo_ready
}

// EchoEnded says why the echo ended: "time_limit" or "closed" (the connection ended).
type EchoEnded struct {
	Reason string `json:"reason"`
}

func (m *EchoStart) validate() error {
	if len(m.Token) > maxTokenLen {
		return errors.New("token is too long")
	}
	if m.Seconds < 0 || m.Seconds > MaxEchoSeconds {
		return fmt.Errorf("seconds must be within 0..%d", MaxEchoSeconds)
	}
	return nil
}

// DecodeEcho parses a frame on the echo socket: echo_start, description or candidate. Like
// Decode, a returned error is always an *Error fit to send back.
func DecodeEcho(frame []byte) (Type, any, error) {
	if len(frame) > MaxMessageSize {
		return "", nil, Errorf(CodeTooLarge, "message is larger than %d bytes", MaxMessageSize)
	}
	var env Envelope
	if err := strictUnmarshal(frame, &env); err != nil {
		return "", nil, Errorf(CodeBadMessage, "not a message envelope: %v", err)
	}
	switch env.Type {
	case TypeDescription, TypeCandidate:
		return Decode(frame)
	case TypeEchoStart:
	case "":
		return "", nil, Errorf(CodeBadMessage, "message has no type")
	default:
		return env.Type, nil, Errorf(CodeUnknownType, "the echo socket takes echo_start, description and candidate, not %q", truncate(string(env.Type), 40))
	}
	m := &EchoStart{}
	if len(env.Payload) > 0 && !bytes.Equal(env.Payload, []byte("null")) {
		if err := strictUnmarshal(env.Payload, m); err != nil {
			return env.Type, nil, Errorf(CodeBadMessage, "bad %s payload: %v", env.Type, err)
		}
	}
	if err := m.validate(); err != nil {
		return env.Type, nil, Errorf(CodeBadMessage, "bad %s payload: %v", env.Type, err)
	}
	return env.Type, m, nil
}
