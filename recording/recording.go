// Package recording records calls on the server, from the RTP the SFU forwards, without
// re-encoding: each participant's VP8 video and Opus audio go into WebM segment files of a few
// seconds (each starting with a keyframe, each complete and playable on its own), written to a
// local spool directory and then uploaded to object storage by an Uploader that outlasts
// storage outages. A manifest lists the segments; after a crash, Recover uploads what the
// spool holds and writes a manifest saying the recording was interrupted.
//
// Layout of the spool: {spool}/{org}/{session}/{recording}/ holds {participant}-{seq:06}.webm
// (".part" while being written), recording.json (who and when), segments.jsonl (one line per
// finished segment) and, once stopped, {recording}-manifest.json. Objects are stored under
// store.ObjectKey(org, session, store.KindRecordings, name) with name
// "{recording}-{participant}-{seq:06}.webm" and "{recording}-manifest.json".
package recording

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/recording/store"
)

// Errors returned by the Manager.
var (
	// ErrNotFound: no such recording is running on this Manager.
	ErrNotFound = errors.New("recording: no such recording")
	// ErrClosed: the Manager has been closed.
	ErrClosed = errors.New("recording: closed")
)

// Manifest states.
const (
	StateComplete    = "complete"    // stopped normally
	StateInterrupted = "interrupted" // the server stopped without stopping the recording
)

// DefaultSegmentDuration is how long a segment runs before the recorder cuts at the next
// keyframe.
const DefaultSegmentDuration = 5 * time.Second

// RoomTap is what the recorder needs from a call; *media.Room implements it.
type RoomTap interface {
	// Participants lists who is in the call now; the recorder polls it to find newcomers.
	Participants() []string
	// AddTap copies a participant's published RTP to t until remove is called.
	AddTap(participantID string, t media.Tap) (remove func(), err error)
	// RequestKeyframe asks the participant's camera for a keyframe.
	RequestKeyframe(participantID string)
}

var _ RoomTap = (*media.Room)(nil)

// Config configures a Manager.
type Config struct {
	SpoolDir        string        // local directory for segments until they are uploaded
	Store           *store.Store  // where segments and manifests go
	SegmentDuration time.Duration // 0 means DefaultSegmentDuration
	Logger          *slog.Logger  // nil means slog.Default()
}

// Manifest describes one recording: its segments in order (by start time, then participant).
type Manifest struct {
	RecordingID string    `json:"recording_id"`
	OrgID       string    `json:"org_id"`
	SessionID   string    `json:"session_id"`
	State       string    `json:"state"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at"`
	Segments    []Segment `json:"segments"`
}

// Segment is one WebM file of one participant.
type Segment struct {
	Participant string    `json:"participant_id"`
	Seq         int       `json:"seq"`
	Key         string    `json:"key"`
	StartedAt   time.Time `json:"started_at"`
	DurationMS  int64     `json:"duration_ms"` // 0 when unknown (recovered without a journal line)
	Size        int64     `json:"size"`
	Tracks      []string  `json:"tracks"` // MIME types, e.g. "video/VP8", "audio/opus"
	Width       int       `json:"width,omitempty"`
	Height      int       `json:"height,omitempty"`
}

// meta is recording.json in a recording's spool directory.
type meta struct {
	RecordingID string    `json:"recording_id"`
	OrgID       string    `json:"org_id"`
	SessionID   string    `json:"session_id"`
	StartedAt   time.Time `json:"started_at"`
}

const (
	metaFile    = "recording.json"
	journalFile = "segments.jsonl"
	pollEvery   = time.Second // how often a recording looks for new participants
)

// Manager runs the recordings of one server and their uploads.
type Manager struct {
	cfg Config
	log *slog.Logger
	up  *Uploader

	mu         sync.Mutex
	closed     bool
	recordings map[string]*recording
}

// New builds a Manager. Call Run to upload, and Recover at start to pick up what a previous
// run left in the spool.
func New(cfg Config) *Manager {
	if cfg.SegmentDuration <= 0 {
		cfg.SegmentDuration = DefaultSegmentDuration
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "recording")
	return &Manager{
		cfg:        cfg,
		log:        log,
		up:         newUploader(cfg.Store, log),
		recordings: make(map[string]*recording),
	}
}

// Backlog is the number of files (segments and manifests) waiting to be uploaded.
func (m *Manager) Backlog() int { return m.up.Backlog() }

// Run uploads finished segments and manifests until ctx ends.
func (m *Manager) Run(ctx context.Context) error { return m.up.Run(ctx) }

// recording is one running recording.
type recording struct {
	meta
	dir  string
	room RoomTap
	log  *slog.Logger
	m    *Manager

	mu        sync.Mutex
	stopped   bool
	recorders map[string]*tappedRecorder
	segments  []Segment

	stop chan struct{} // ends the participant poller
	done chan struct{}
}

type tappedRecorder struct {
	rec    *Recorder
	remove func()
}

// Start records every participant of the room, present and future, until Stop.
func (m *Manager) Start(ctx context.Context, orgID, sessionID string, room RoomTap) (string, error) {
	if room == nil {
		return "", errors.New("recording: start: nil room")
	}
	if _, err := store.SessionPrefix(orgID, sessionID); err != nil {
		return "", fmt.Errorf("recording: start: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	id := newID()
	rec := &recording{
		meta:      meta{RecordingID: id, OrgID: orgID, SessionID: sessionID, StartedAt: time.Now().UTC()},
		dir:       filepath.Join(m.cfg.SpoolDir, orgID, sessionID, id),
		room:      room,
		log:       m.log.With("org", orgID, "session", sessionID, "recording", id),
		m:         m,
		recorders: make(map[string]*tappedRecorder),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if err := os.MkdirAll(rec.dir, 0o755); err != nil {
		return "", fmt.Errorf("recording: start: %w", err)
	}
	if err := writeJSONFile(filepath.Join(rec.dir, metaFile), rec.meta); err != nil {
		return "", fmt.Errorf("recording: start: %w", err)
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		os.RemoveAll(rec.dir)
		return "", ErrClosed
	}
	m.recordings[id] = rec
	m.mu.Unlock()

	rec.addParticipants()
	go rec.poll()
	rec.log.Info("recording started")
	return id, nil
}

func (r *recording) poll() {
	defer close(r.done)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.addParticipants()
		}
	}
}

// addParticipants starts a recorder for every participant that has none yet.
func (r *recording) addParticipants() {
	for _, pid := range r.room.Participants() {
		r.mu.Lock()
		_, have := r.recorders[pid]
		stopped := r.stopped
		r.mu.Unlock()
		if have || stopped {
			continue
		}
		if _, err := store.ObjectKey(r.OrgID, r.SessionID, store.KindRecordings, objectName(r.RecordingID, pid, 1)); err != nil {
			r.log.Warn("participant id cannot name a recording; not recording it", "participant", pid, "err", err)
			r.mu.Lock()
			r.recorders[pid] = &tappedRecorder{}
			r.mu.Unlock()
			continue
		}
		rec := newRecorder(r.dir, pid, r.m.cfg.SegmentDuration, r.log.With("participant", pid), r.segmentDone)
		room := r.room
		rec.RequestKeyframe = func() { room.RequestKeyframe(pid) }
		go rec.run()
		remove, err := r.room.AddTap(pid, rec)
		if err != nil {
			r.log.Warn("cannot tap participant", "participant", pid, "err", err)
			rec.Stop()
			continue
		}
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			remove()
			rec.Stop()
			return
		}
		r.recorders[pid] = &tappedRecorder{rec: rec, remove: remove}
		r.mu.Unlock()
		room.RequestKeyframe(pid) // now that the tap sees it
		r.log.Info("recording participant", "participant", pid)
	}
}

// segmentDone runs on a recorder's goroutine for every finished segment: journal it and queue
// its upload.
func (r *recording) segmentDone(d segmentDone) {
	seg := d.Segment
	key, err := store.ObjectKey(r.OrgID, r.SessionID, store.KindRecordings, objectName(r.RecordingID, seg.Participant, seg.Seq))
	if err != nil { // checked when the participant was added
		r.log.Error("segment has no valid key", "err", err)
		return
	}
	seg.Key = key
	if err := appendJournal(filepath.Join(r.dir, journalFile), seg); err != nil {
		r.log.Warn("cannot journal a segment", "err", err)
	}
	r.mu.Lock()
	r.segments = append(r.segments, seg)
	r.mu.Unlock()
	r.m.up.enqueue(upload{path: d.path, key: key, contentType: "video/webm"})
}

// Stop ends a recording: it finishes every participant's open segment, writes the manifest and
// queues it for upload after the segments. It does not wait for the uploads (see Backlog).
func (m *Manager) Stop(ctx context.Context, recordingID string) (Manifest, error) {
	m.mu.Lock()
	rec := m.recordings[recordingID]
	delete(m.recordings, recordingID)
	m.mu.Unlock()
	if rec == nil {
		return Manifest{}, fmt.Errorf("recording: stop %q: %w", recordingID, ErrNotFound)
	}
	return rec.finish(ctx)
}

func (r *recording) finish(ctx context.Context) (Manifest, error) {
	r.mu.Lock()
	r.stopped = true
	recs := make([]*tappedRecorder, 0, len(r.recorders))
	for _, t := range r.recorders {
		if t.rec != nil {
			recs = append(recs, t)
		}
	}
	r.mu.Unlock()
	close(r.stop)
	<-r.done

	var wg sync.WaitGroup
	var errs []error
	var errMu sync.Mutex
	for _, t := range recs {
		t.remove()
		wg.Go(func() {
			if err := t.rec.Stop(); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
			}
		})
	}
	wg.Wait()

	r.mu.Lock()
	segs := slices.Clone(r.segments)
	r.mu.Unlock()
	man := Manifest{
		RecordingID: r.RecordingID, OrgID: r.OrgID, SessionID: r.SessionID,
		State: StateComplete, StartedAt: r.StartedAt, EndedAt: time.Now().UTC(),
		Segments: sortSegments(segs),
	}
	if err := r.m.queueManifest(r.dir, man); err != nil {
		return man, err
	}
	r.log.Info("recording stopped", "segments", len(segs))
	return man, errors.Join(errs...)
}

// queueManifest writes the manifest into the recording's spool directory and queues it; once
// it is stored, the directory is removed.
func (m *Manager) queueManifest(dir string, man Manifest) error {
	name := man.RecordingID + "-manifest.json"
	key, err := store.ObjectKey(man.OrgID, man.SessionID, store.KindRecordings, name)
	if err != nil {
		return fmt.Errorf("recording: manifest: %w", err)
	}
	path := filepath.Join(dir, name)
	if err := writeJSONFile(path, man); err != nil {
		return fmt.Errorf("recording: manifest: %w", err)
	}
	m.up.enqueue(upload{path: path, key: key, contentType: "application/json", after: func() {
		os.Remove(filepath.Join(dir, journalFile))
		os.Remove(filepath.Join(dir, metaFile))
		// Only an empty directory goes; then its parents, if empty too.
		for d := dir; d != filepath.Clean(m.cfg.SpoolDir) && os.Remove(d) == nil; d = filepath.Dir(d) {
		}
	}})
	return nil
}

// Close stops every running recording and waits, within ctx, until the uploads are done.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	recs := make([]*recording, 0, len(m.recordings))
	for _, r := range m.recordings {
		recs = append(recs, r)
	}
	clear(m.recordings)
	m.mu.Unlock()

	var errs []error
	for _, r := range recs {
		if _, err := r.finish(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.up.drain(ctx); err != nil {
		errs = append(errs, fmt.Errorf("recording: %d uploads left: %w", m.up.Backlog(), err))
	}
	return errors.Join(errs...)
}

// abandon drops every recording as a crash would: no segment is finished, no manifest
// written, nothing more uploaded. For tests.
func (m *Manager) abandon() {
	m.mu.Lock()
	m.closed = true
	recs := make([]*recording, 0, len(m.recordings))
	for _, r := range m.recordings {
		recs = append(recs, r)
	}
	clear(m.recordings)
	m.mu.Unlock()
	for _, r := range recs {
		r.mu.Lock()
		r.stopped = true
		ts := slices.Collect(maps.Values(r.recorders))
		r.mu.Unlock()
		close(r.stop)
		<-r.done
		for _, t := range ts {
			if t.rec != nil {
				t.remove()
				t.rec.abandon()
			}
		}
	}
}

func sortSegments(segs []Segment) []Segment {
	slices.SortStableFunc(segs, func(a, b Segment) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		if c := strings.Compare(a.Participant, b.Participant); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	return segs
}

func objectName(recordingID, participant string, seq int) string {
	return fmt.Sprintf("%s-%s-%06d.webm", recordingID, participant, seq)
}

func segmentFileName(participant string, seq int) string {
	return fmt.Sprintf("%s-%06d.webm", participant, seq)
}

func newID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "rec_" + hex.EncodeToString(b)
}

// writeJSONFile writes v to path atomically: a temporary file, synced, then renamed.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func appendJournal(path string, seg Segment) error {
	b, err := json.Marshal(seg)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readJournal reads the segments journaled in a recording's directory; a torn last line (a
// crash while appending) is ignored.
func readJournal(path string) []Segment {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []Segment
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var s Segment
		if json.Unmarshal(sc.Bytes(), &s) == nil {
			out = append(out, s)
		}
	}
	return out
}
