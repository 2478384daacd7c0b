package signaling

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/problem"
)

// An organisation's policy decides, for all its sessions, whether calls are recorded
// automatically, how long stored objects are kept, and which files may be shared.

// retentionInterval is how often the retention job visits every organisation.
const retentionInterval = time.Hour

// organizationView is the caller's organisation as the API shows it.
type organizationView struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	CreatedAt time.Time    `json:"created_at"`
	Policy    policyView   `json:"policy"`
	Limits    platformView `json:"platform_limits"`
	// Seats is the licence and its use; it is not part of the ETag (specialists come and go
	// without the organisation's settings changing).
	Seats *seatsView `json:"seats,omitempty"`
}

type policyView struct {
	AutoRecord    bool     `json:"auto_record"`
	RetentionDays int      `json:"retention_days"`
	FileMaxBytes  int64    `json:"file_max_bytes"`
	FileTypes     []string `json:"file_types"`
	// Video messages and emergencies (videomessages.go, emergency.go).
	OpeningHours      *rooms.OpeningHours `json:"opening_hours"`
	DispatchWebhookID string              `json:"dispatch_webhook_id"`
}

// platformView says what a policy may choose from.
type platformView struct {
	FileMaxBytes int64    `json:"file_max_bytes"`
	FileTypes    []string `json:"file_types"`
}

// organizationPatch changes some of an organisation's settings; absent fields stay.
type organizationPatch struct {
	Name   *string `json:"name"`
	Policy *struct {
		AutoRecord    *bool     `json:"auto_record"`
		RetentionDays *int      `json:"retention_days"`
		FileMaxBytes  *int64    `json:"file_max_bytes"`
		FileTypes     *[]string `json:"file_types"`
		// Empty weekly hours mean always open; an empty id turns dispatch off.
		OpeningHours      *rooms.OpeningHours `json:"opening_hours"`
		DispatchWebhookID *string             `json:"dispatch_webhook_id"`
	} `json:"policy"`
}

// platformFileTypes are the content types Assist accepts for shared files, sorted.
func platformFileTypes() []string {
	types := make([]string, 0, len(allowedFileTypes))
	for t := range allowedFileTypes {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

func viewOrganization(o *rooms.Organization) organizationView {
	types := o.Policy.FileTypes
	if types == nil {
		types = []string{}
	}
	return organizationView{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt, // Seats: see writeOrganization
		Policy: policyView{AutoRecord: o.Policy.AutoRecord, RetentionDays: o.Policy.RetentionDays,
			FileMaxBytes: o.Policy.FileMaxBytes, FileTypes: types,
			OpeningHours: o.Policy.OpeningHours, DispatchWebhookID: o.Policy.DispatchWebhookID},
		Limits: platformView{FileMaxBytes: maxFileSize, FileTypes: platformFileTypes()}}
}

func (s *Server) handleGetOrganization(w http.ResponseWriter, r *http.Request) {
	org, err := s.rooms.Organization(r.Context(), callerOf(r).OrgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.writeOrganization(w, r, org)
}

// writeOrganization answers with the organisation, its ETag (over its settings) and its seats.
func (s *Server) writeOrganization(w http.ResponseWriter, r *http.Request, org *rooms.Organization) {
	view := viewOrganization(org)
	tag := etagOf(view)
	seats, err := s.seatsOf(r.Context(), org)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	view.Seats = &seats
	w.Header().Set("ETag", tag)
	if r.Method == http.MethodGet && etagMatches(r.Header.Get("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

func (s *Server) handleUpdateOrganization(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	var patch organizationPatch
	if !readJSON(w, r, &patch) {
		return
	}
	if patch.Name != nil && (strings.TrimSpace(*patch.Name) == "" || len(*patch.Name) > 200) {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", "name: 1 to 200 characters")
		return
	}
	if patch.Policy != nil && !s.checkDispatchWebhook(w, r, c.OrgID, patch.Policy.DispatchWebhookID) {
		return
	}
	ifMatch := r.Header.Get("If-Match")
	org, err := s.rooms.UpdateOrganization(r.Context(), c.OrgID, func(o *rooms.Organization) error {
		if ifMatch != "" && !etagMatches(ifMatch, etagOf(viewOrganization(o))) {
			return errPreconditionFailed
		}
		if patch.Name != nil {
			o.Name = strings.TrimSpace(*patch.Name)
		}
		if p := patch.Policy; p != nil {
			if p.AutoRecord != nil {
				o.Policy.AutoRecord = *p.AutoRecord
			}
			if p.RetentionDays != nil {
				o.Policy.RetentionDays = *p.RetentionDays
			}
			if p.FileMaxBytes != nil {
				o.Policy.FileMaxBytes = *p.FileMaxBytes
			}
			if p.FileTypes != nil {
				o.Policy.FileTypes = slices.Compact(slices.Sorted(slices.Values(*p.FileTypes)))
			}
			applyMessagePolicy(&o.Policy, p.OpeningHours, p.DispatchWebhookID)
		}
		return o.Policy.Check(maxFileSize, platformFileTypes())
	})
	if errors.Is(err, rooms.ErrInvalidPolicy) {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field", err.Error())
		return
	}
	if errors.Is(err, errPreconditionFailed) {
		problem.Write(w, r, http.StatusPreconditionFailed, "precondition-failed", err.Error())
		return
	}
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSettingsChange, "", "organization"))
	s.writeOrganization(w, r, org)
}

// fileRules are what one organisation lets its sessions share: the largest file and whether
// a sniffed content type is allowed, with the extension to store it under.
type fileRules struct {
	maxBytes int64
	types    []string // empty: every platform type
}

func (s *Server) fileRules(ctx context.Context, orgID string) (fileRules, error) {
	org, err := s.rooms.Organization(ctx, orgID)
	if err != nil {
		return fileRules{}, err
	}
	rules := fileRules{maxBytes: maxFileSize, types: org.Policy.FileTypes}
	if org.Policy.FileMaxBytes > 0 {
		rules.maxBytes = org.Policy.FileMaxBytes
	}
	return rules, nil
}

// allow says whether a sniffed content type may be shared, and its file extension.
func (f fileRules) allow(sniffed string) (mediaType, ext string, ok bool) {
	mediaType, _, err := mime.ParseMediaType(sniffed)
	if err != nil {
		return sniffed, "", false
	}
	ext, ok = allowedFileTypes[mediaType]
	if ok && len(f.types) > 0 {
		ok = slices.Contains(f.types, mediaType)
	}
	return mediaType, ext, ok
}

// autoRecord starts recording a call whose organisation records every session, unless it is
// already being recorded. It runs in the background: the participants are told first.
func (s *Server) autoRecord(orgID, sessionID string) {
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		org, err := s.rooms.Organization(ctx, orgID)
		if err != nil || !org.Policy.AutoRecord || len(s.activeRecordings(orgID, sessionID)) > 0 {
			return
		}
		if s.forwardAutoRecord(ctx, orgID, sessionID) { // the room is on another node (forward.go)
			return
		}
		s.autoRecordMu.Lock() // one start per session even when two admissions race
		defer s.autoRecordMu.Unlock()
		if len(s.activeRecordings(orgID, sessionID)) > 0 {
			return
		}
		id, err := s.startRecording(ctx, orgID, sessionID)
		if err != nil {
			s.log.Error("automatic recording did not start", "session", sessionID, "err", err)
			return
		}
		s.record(ctx, audit.Event{OrgID: orgID, Actor: audit.Actor{Kind: audit.ActorSystem, Name: "policy"},
			Action: audit.ActionRecordingStart, SessionID: sessionID, Target: id})
	}()
}

// handleDeleteSession ends a session if it is still running, then deletes everything stored
// for it: recordings, snapshots and files in object storage, the records of its video messages,
// its chat and tool timeline, and its record. The audit trail keeps that it happened.
func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	sess, err := s.rooms.Session(r.Context(), c.OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	if sess.State != rooms.SessionEnded {
		if _, err := s.rooms.End(r.Context(), sess.OrgID, sess.ID, "deleted through the API", "api"); err != nil && !errors.Is(err, rooms.ErrEnded) {
			s.roomsError(w, r, err)
			return
		}
	}
	s.closeSessionMedia(sess.OrgID, sess.ID) // recordings stop and queue their last files
	// The video messages' records go first, so none is ever listed without its recording; a
	// failure after this leaves only objects, which deleting the session again removes.
	if _, err := s.rooms.DeleteVideoMessagesWhere(r.Context(), sess.OrgID, func(m *rooms.VideoMessage) bool {
		return m.SessionID == sess.ID
	}); err != nil {
		s.internalError(w, r, err)
		return
	}
	if err := s.deleteSessionObjects(r.Context(), sess.OrgID, sess.ID); err != nil {
		s.internalError(w, r, err)
		return
	}
	if err := s.rooms.DeleteSession(r.Context(), sess.OrgID, sess.ID); err != nil && !errors.Is(err, rooms.ErrNotFound) {
		s.internalError(w, r, err)
		return
	}
	s.record(r.Context(), s.auditFromRequest(r, audit.ActionSessionDelete, sess.ID, ""))
	w.WriteHeader(http.StatusNoContent)
}

// deleteSessionObjects deletes a session's objects. Segments of a recording that was just
// stopped may still be on their way to storage: wait for the upload queue to drain (bounded),
// then delete again, so nothing of the session is left behind.
func (s *Server) deleteSessionObjects(ctx context.Context, orgID, sessionID string) error {
	prefix, err := store.SessionPrefix(orgID, sessionID)
	if err != nil {
		return err
	}
	if err := s.objects.DeletePrefix(ctx, prefix); err != nil {
		return err
	}
	if s.recorder.Backlog() == 0 {
		return nil
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for s.recorder.Backlog() > 0 {
		select {
		case <-wait.Done():
			return fmt.Errorf("recording uploads still behind; delete again later: %w", wait.Err())
		case <-tick.C:
		}
	}
	return s.objects.DeletePrefix(ctx, prefix)
}

// enforceRetention runs the retention job until ctx ends: every organisation with a retention
// period loses the objects stored longer ago than that.
func (s *Server) enforceRetention(ctx context.Context) error {
	tick := time.NewTicker(retentionInterval)
	defer tick.Stop()
	for {
		if err := s.applyRetention(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// applyRetention deletes, for every organisation with a retention period, the objects stored
// before now minus that period. Several nodes may run it at once: deleting twice is harmless.
func (s *Server) applyRetention(ctx context.Context, now time.Time) error {
	ids, err := s.rooms.OrganizationIDs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		org, err := s.rooms.Organization(ctx, id)
		if err != nil || org.Policy.RetentionDays <= 0 {
			continue
		}
		prefix, err := store.OrgPrefix(id)
		if err != nil {
			continue
		}
		objects, err := s.objects.List(ctx, prefix)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cutoff := now.Add(-time.Duration(org.Policy.RetentionDays) * 24 * time.Hour)
		deleted := 0
		kept, gone := make(map[string]bool, len(objects)), map[string]bool{}
		for _, o := range objects {
			kept[o.Key] = true
			if o.LastModified.Before(cutoff) {
				if err := s.objects.Delete(ctx, o.Key); err != nil {
					errs = append(errs, err)
					continue
				}
				kept[o.Key], gone[o.Key] = false, true
				deleted++
			}
		}
		if deleted > 0 {
			s.log.Info("retention deleted objects", "org", id, "objects", deleted, "days", org.Policy.RetentionDays)
		}
		// A video message's record goes with its recording: the one just deleted, or one older
		// than the period whose recording is gone already.
		forgot, err := s.rooms.DeleteVideoMessagesWhere(ctx, id, func(m *rooms.VideoMessage) bool {
			return gone[m.ObjectKey] || (!kept[m.ObjectKey] && m.CreatedAt.Before(cutoff))
		})
		if err != nil {
			errs = append(errs, err)
		}
		if forgot > 0 {
			s.log.Info("retention deleted video messages", "org", id, "video_messages", forgot, "days", org.Policy.RetentionDays)
		}
	}
	return errors.Join(errs...)
}
