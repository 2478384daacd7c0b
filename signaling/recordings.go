package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/assist-video/assist/recording"
	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// Recording happens in this node's SFU, from the RTP it forwards (package recording); the API
// starts and stops it, and lists what is stored with short-lived download URLs. In a cluster the
// recording runs on the session's media node: calls that reach another node go there (forward.go).

type recordingOwner struct{ orgID, sessionID string }

// recordingView is a recording as the API shows it.
type recordingView struct {
	ID        string             `json:"id"`
	SessionID string             `json:"session_id"`
	State     string             `json:"state"` // recording, complete, interrupted
	StartedAt time.Time          `json:"started_at"`
	EndedAt   *time.Time         `json:"ended_at,omitempty"`
	Segments  []recordingSegment `json:"segments"`
	// UploadsBehind counts this node's segments still waiting for object storage.
	UploadsBehind int `json:"uploads_behind"`
}

type recordingSegment struct {
	ParticipantID string    `json:"participant_id"`
	Seq           int       `json:"seq"`
	StartedAt     time.Time `json:"started_at"`
	DurationMS    int64     `json:"duration_ms"`
	Size          int64     `json:"size"`
	URL           string    `json:"url"`
}

func (s *Server) openRecorder(ctx context.Context) error {
	s.recorder = recording.New(recording.Config{SpoolDir: s.cfg.Path("spool", "recordings"), Store: s.objects,
		Logger: s.log.With("component", "recording")})
	s.recordingOwners = map[string]recordingOwner{}
	// Segments a crash left on disk are uploaded; their recordings are marked interrupted.
	manifests, err := s.recorder.Recover(ctx, s.cfg.Path("spool", "recordings"))
	for _, m := range manifests {
		s.log.Warn("recovered an interrupted recording", "recording", m.RecordingID, "session", m.SessionID, "segments", len(m.Segments))
	}
	return err
}

func (s *Server) handleStartRecording(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	sess, err := s.rooms.Session(r.Context(), c.OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	if sess.State == rooms.SessionEnded {
		problem.Write(w, r, http.StatusConflict, "invalid-state", "the session has ended")
		return
	}
	if s.forwardStartRecording(w, r, sess) { // the room is on another node (forward.go)
		return
	}
	id, err := s.startRecording(r.Context(), sess.OrgID, sess.ID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionRecordingStart, sess.ID, id))
	writeJSON(w, http.StatusCreated, recordingView{ID: id, SessionID: sess.ID, State: "recording",
		StartedAt: time.Now().UTC(), Segments: []recordingSegment{}, UploadsBehind: s.recorder.Backlog()})
}

func (s *Server) handleStopRecording(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	id := r.PathValue("rid")
	s.recordingMu.Lock()
	owner, ok := s.recordingOwners[id]
	s.recordingMu.Unlock()
	if !ok && s.forwardStopRecording(w, r) { // running on the session's node (forward.go)
		return
	}
	if !ok || owner.orgID != c.OrgID || owner.sessionID != r.PathValue("id") {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such recording running on this session")
		return
	}
	m, err := s.stopRecording(r.Context(), owner, id)
	if errors.Is(err, recording.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such recording running")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionRecordingStop, owner.sessionID, id))
	writeJSON(w, http.StatusOK, s.recordingView(m))
}

// startRecording records a session's call on this node. Everyone in the call is told first
// (a "starting" notice, kept in the timeline so a late joiner sees it too); only then does the
// recorder write anything, and the indicator goes on.
func (s *Server) startRecording(ctx context.Context, orgID, sessionID string) (string, error) {
	notice := wire.Recording{Meta: wire.Meta{ID: newMessageID(), Time: time.Now().UTC(),
		From: wire.Sender{Role: "system", Name: "Assist"}}, Starting: true}
	if err := s.publishTool(ctx, orgID, sessionID, wire.TypeRecording, notice, true); err != nil {
		return "", fmt.Errorf("tell the participants before recording: %w", err)
	}
	id, err := s.recorder.Start(ctx, orgID, sessionID, s.sfu.Room(sessionID))
	if err != nil {
		// The notice is kept in the timeline: say that nothing is being recorded after all.
		s.announceRecording(context.WithoutCancel(ctx), orgID, sessionID, "", false)
		return "", err
	}
	s.recordingMu.Lock()
	s.recordingOwners[id] = recordingOwner{orgID, sessionID}
	s.recordingMu.Unlock()
	s.announceRecording(ctx, orgID, sessionID, id, true)
	return id, nil
}

// stopRecording stops one recording, hides the indicator and tells the integrator.
func (s *Server) stopRecording(ctx context.Context, owner recordingOwner, id string) (recording.Manifest, error) {
	m, err := s.recorder.Stop(ctx, id)
	if errors.Is(err, recording.ErrNotFound) {
		return m, err
	}
	if err != nil {
		// The recording has stopped and its manifest is queued; a participant's last file may
		// be short. Say so, and carry on: the call must not stay "recording".
		s.log.Warn("recording stopped with errors", "recording", id, "err", err)
	}
	s.recordingMu.Lock()
	delete(s.recordingOwners, id)
	s.recordingMu.Unlock()
	// Stopping can outlast the caller's deadline (the last files are finished and synced):
	// telling everyone gets a deadline of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	s.announceRecording(ctx, owner.orgID, owner.sessionID, id, false)
	s.publishWebhook(ctx, owner.orgID, webhooks.TypeRecordingReady, id+".ready", struct {
		SessionID   string `json:"session_id"`
		RecordingID string `json:"recording_id"`
		Segments    int    `json:"segments"`
	}{owner.sessionID, id, len(m.Segments)})
	return m, nil
}

// activeRecordings lists the recordings of a session running on this node.
func (s *Server) activeRecordings(orgID, sessionID string) []string {
	s.recordingMu.Lock()
	defer s.recordingMu.Unlock()
	var ids []string
	for id, owner := range s.recordingOwners {
		if owner == (recordingOwner{orgID, sessionID}) {
			ids = append(ids, id)
		}
	}
	return ids
}

// announceRecording shows or hides the recording indicator for everyone in the call.
func (s *Server) announceRecording(ctx context.Context, orgID, sessionID, id string, active bool) {
	msg := wire.Recording{Meta: wire.Meta{ID: newMessageID(), Time: time.Now().UTC(),
		From: wire.Sender{Role: "system", Name: "Assist"}}, Active: active, RecordingID: id}
	_ = s.publishTool(ctx, orgID, sessionID, wire.TypeRecording, msg, true)
}

// handleListRecordings lists a session's stored recordings from their manifests.
func (s *Server) handleListRecordings(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	sess, err := s.rooms.Session(r.Context(), c.OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	prefix, err := store.SessionPrefix(sess.OrgID, sess.ID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	objects, err := s.objects.List(r.Context(), prefix+store.KindRecordings+"/")
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	out := struct {
		Data []recordingView `json:"data"`
	}{Data: []recordingView{}}
	for _, o := range objects {
		if !strings.HasSuffix(o.Key, "-manifest.json") {
			continue
		}
		body, _, err := s.objects.Get(r.Context(), o.Key)
		if err != nil {
			continue
		}
		var m recording.Manifest
		err = json.NewDecoder(io.LimitReader(body, 4<<20)).Decode(&m)
		body.Close()
		if err == nil {
			out.Data = append(out.Data, s.recordingView(m))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) recordingView(m recording.Manifest) recordingView {
	v := recordingView{ID: m.RecordingID, SessionID: m.SessionID, State: m.State, StartedAt: m.StartedAt,
		Segments: []recordingSegment{}, UploadsBehind: s.recorder.Backlog()}
	if !m.EndedAt.IsZero() {
		end := m.EndedAt
		v.EndedAt = &end
	}
	for _, seg := range m.Segments {
		v.Segments = append(v.Segments, recordingSegment{ParticipantID: seg.Participant, Seq: seg.Seq,
			StartedAt: seg.StartedAt, DurationMS: seg.DurationMS, Size: seg.Size, URL: s.downloadURL(seg.Key)})
	}
	return v
}

// stopRecordingsInBackground stops the session's recordings without holding up the caller (a
// participant's socket loop): finishing the last files can take a moment. then runs after.
func (s *Server) stopRecordingsInBackground(orgID, sessionID string, then func(context.Context)) {
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		s.stopRecordings(orgID, sessionID)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		then(ctx)
	}()
}

// stopRecordings stops the session's recordings running on this node, as when it ends.
func (s *Server) stopRecordings(orgID, sessionID string) {
	for _, id := range s.activeRecordings(orgID, sessionID) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := s.stopRecording(ctx, recordingOwner{orgID, sessionID}, id); err != nil {
			s.log.Warn("stop recording", "recording", id, "err", err)
		}
		cancel()
	}
}
