package signaling

import (
	"context"
	"encoding/json"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/wire"
)

// The in-session tools travel as typed messages on the socket. The server checks who may send
// what, stamps each message with its sender (wire.Meta), keeps it in the session's timeline
// (rooms.AppendTimeline) or relays it live (pointer moves), and every socket of the session, on
// any node, passes on what its participant may see.

// toolRule says who may send a tool message and whether it is kept.
type toolRule struct {
	role   rooms.Role // "" = anyone
	inCall bool       // the sender must be in the call (not waiting)
	kept   bool       // kept in the timeline; otherwise relayed live only
	// expert: an invited expert may send it too (see invitations.go). Experts see and hear
	// everyone, chat and point, and nothing more.
	expert bool
}

var toolRules = map[wire.Type]toolRule{
	wire.TypeChat:                {kept: true},
	wire.TypeAnnotation:          {role: rooms.RoleSpecialist, inCall: true, kept: true},
	wire.TypePointer:             {role: rooms.RoleSpecialist, inCall: true, expert: true},
	wire.TypeCameraControl:       {role: rooms.RoleSpecialist, inCall: true, kept: true},
	wire.TypeSnapshotRequest:     {role: rooms.RoleSpecialist, inCall: true, kept: true},
	wire.TypeGeolocationRequest:  {role: rooms.RoleSpecialist, inCall: true, kept: true},
	wire.TypeCameraCapabilities:  {role: rooms.RoleCustomer, inCall: true, kept: true},
	wire.TypeCameraControlResult: {role: rooms.RoleCustomer, inCall: true, kept: true},
	wire.TypeGeolocation:         {role: rooms.RoleCustomer, inCall: true, kept: true},
	wire.TypeScreenShare:         {inCall: true},
	// The setup test runs in the waiting room as well as in the call.
	wire.TypeDiagnostics: {role: rooms.RoleCustomer, kept: true},
}

func (p *participant) meta() wire.Meta {
	return wire.Meta{ID: newMessageID(), Time: time.Now().UTC(),
		From: wire.Sender{ParticipantID: p.id, Role: string(p.role), Name: p.name}}
}

// tool handles a tool message from the client.
func (p *participant) tool(ctx context.Context, typ wire.Type, payload any) *wire.Error {
	rule := toolRules[typ]
	if rule.role != "" && rule.role != p.role && !(rule.expert && p.role == rooms.RoleExpert) {
		return wire.Errorf(wire.CodeForbidden, "a %s cannot send %s", p.role, typ)
	}
	if rule.inCall && p.state != rooms.ParticipantInCall {
		return wire.Errorf(wire.CodeInvalidState, "%s is for participants in the call", typ)
	}
	var out any
	m := p.meta()
	switch v := payload.(type) {
	case *wire.ChatSend:
		chat := wire.Chat{Meta: m, Text: v.Text}
		if p.chatTranslated(chat) {
			return nil // kept once translated, in order (captions.go)
		}
		out = chat
	case *wire.AnnotationSend:
		out = wire.Annotation{Meta: m, AnnotationSend: *v}
	case *wire.PointerSend:
		out = wire.Pointer{Meta: m, PointerSend: *v}
	case *wire.CameraControlSend:
		out = wire.CameraControl{Meta: m, CameraControlSend: *v}
	case *wire.CameraCapabilitiesSend:
		out = wire.CameraCapabilities{Meta: m, CameraCapabilitiesSend: *v}
	case *wire.CameraControlResultSend:
		out = wire.CameraControlResult{Meta: m, CameraControlResultSend: *v}
	case *wire.GeolocationSend:
		out = wire.Geolocation{Meta: m, GeolocationSend: *v}
	case *wire.ScreenShareSend:
		out = wire.ScreenShare{Meta: m, ScreenShareSend: *v}
	case *wire.DiagnosticsSend:
		out = wire.Diagnostics{Meta: m, DiagnosticsSend: *v}
	case *wire.Empty: // snapshot_request, geolocation_request
		out = wire.Request{Meta: m}
	default:
		return wire.Errorf(wire.CodeUnknownType, "%s is not a tool", typ)
	}
	if werr := p.srv.publishTool(ctx, p.orgID, p.sessionID, typ, out, rule.kept); werr != nil {
		return werr
	}
	if d, ok := payload.(*wire.DiagnosticsSend); ok {
		p.srv.noteDiagnostics(ctx, p, d) // orgqueue.go: the verdict shows in the organisation's queue
	}
	switch typ {
	case wire.TypeGeolocationRequest:
		p.record(ctx, audit.ActionGeolocationRequest, "")
	case wire.TypeSnapshotRequest:
		p.record(ctx, audit.ActionSnapshotTake, "")
	case wire.TypeGeolocation:
		p.emergencyLocation(ctx, payload.(*wire.GeolocationSend)) // emergency.go: to dispatch
	}
	return nil
}

// publishTool encodes a tool message and keeps or relays it.
func (s *Server) publishTool(ctx context.Context, orgID, sessionID string, typ wire.Type, msg any, kept bool) *wire.Error {
	frame, err := wire.Encode(typ, msg)
	if err != nil {
		return wire.Errorf(wire.CodeInternal, "encode: %v", err)
	}
	if kept {
		err = s.rooms.AppendTimeline(ctx, orgID, sessionID, string(typ), frame)
	} else {
		err = s.rooms.PublishLive(orgID, sessionID, frame)
	}
	if err != nil {
		s.log.Error("publish tool message", "type", typ, "err", err)
		return wire.Errorf(wire.CodeInternal, "could not deliver %s", typ)
	}
	return nil
}

// mayReceive says whether this participant sees a relayed message of a type.
func (p *participant) mayReceive(typ wire.Type, from string) bool {
	if p.state != rooms.ParticipantInCall {
		return typ == wire.TypeChat // the waiting room is text only
	}
	switch typ {
	case wire.TypeGeolocation, wire.TypeCameraCapabilities, wire.TypeCameraControlResult, wire.TypeDiagnostics:
		return p.role == rooms.RoleSpecialist || from == p.id // the customer's data: specialists only
	case wire.TypeSnapshotRequest, wire.TypeGeolocationRequest, wire.TypeCameraControl:
		return p.role != rooms.RoleExpert // commands for the customer's device, not an expert's
	case wire.TypeCaption:
		return from != p.id // others' words (captions.go)
	}
	return true
}

// relay passes a timeline entry or live message on to the client, if it may see it, with
// fresh download URLs.
func (p *participant) relay(frame []byte) {
	var env wire.Envelope
	if json.Unmarshal(frame, &env) != nil {
		return
	}
	var meta struct {
		From wire.Sender `json:"from"`
	}
	_ = json.Unmarshal(env.Payload, &meta)
	if !p.mayReceive(env.Type, meta.From.ParticipantID) {
		return
	}
	p.sendFrame(p.forReader(p.srv.freshURLs(env)))
}

// sendHistory replays the kept timeline to a client that has just joined.
func (p *participant) sendHistory(ctx context.Context) {
	entries, err := p.srv.rooms.Timeline(ctx, p.orgID, p.sessionID)
	if err != nil {
		p.log.Warn("history", "err", err)
		return
	}
	h := wire.History{Entries: []wire.Envelope{}}
	for _, frame := range entries {
		var env wire.Envelope
		if json.Unmarshal(frame, &env) != nil {
			continue
		}
		var meta struct {
			From wire.Sender `json:"from"`
		}
		_ = json.Unmarshal(env.Payload, &meta)
		if p.mayReceive(env.Type, meta.From.ParticipantID) {
			h.Entries = append(h.Entries, p.forReader(p.srv.freshURLs(env)))
		}
	}
	p.send(wire.TypeHistory, h)
}

// freshURLs re-signs the download URLs of snapshot and file entries: kept entries outlive any
// signature.
func (s *Server) freshURLs(env wire.Envelope) wire.Envelope {
	switch env.Type {
	case wire.TypeSnapshotTaken:
		var m wire.SnapshotTaken
		if json.Unmarshal(env.Payload, &m) == nil {
			m.Snapshot.URL = s.downloadURL(m.Snapshot.URL)
			env.Payload, _ = json.Marshal(m)
		}
	case wire.TypeFileShared:
		var m wire.FileShared
		if json.Unmarshal(env.Payload, &m) == nil {
			m.File.URL = s.downloadURL(m.File.URL)
			env.Payload, _ = json.Marshal(m)
		}
	}
	return env
}
