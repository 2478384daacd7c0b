package signaling

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // snapshots: decode the size of JPEG photos
	_ "image/png"  // and PNG frame grabs
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// Files and snapshots are uploaded through the API (never the socket) into object storage,
// checked by their content, not their name, and downloaded through short-lived signed URLs.
const (
	maxFileSize     = 25 << 20
	maxSnapshotSize = 15 << 20
	downloadTTL     = 10 * time.Minute
	maxFileNameLen  = 120
)

// allowedFileTypes are the media types accepted for shared files, as http.DetectContentType
// names them without parameters (office documents are ZIP containers). An organisation's
// policy may narrow them.
var allowedFileTypes = map[string]string{
	"image/jpeg":      "jpg",
	"image/png":       "png",
	"image/gif":       "gif",
	"image/webp":      "webp",
	"application/pdf": "pdf",
	"text/plain":      "txt",
	"application/zip": "zip",
}

func newMessageID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "msg_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func newObjectID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// sessionCaller is who uploads to a session: a participant holding a link, or a specialist.
type sessionCaller struct {
	orgID   string
	role    rooms.Role
	key     string // the participant key (see rooms.Participant.Key)
	session *rooms.Session
	sender  wire.Sender
}

// authorizeSession admits a session link for this session, or a console token of its
// organisation, and finds the participant behind it.
func (s *Server) authorizeSession(r *http.Request, sessionID string) (*sessionCaller, int, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, http.StatusUnauthorized, errNoCredentials
	}
	c := &sessionCaller{}
	if claims, err := s.issuer.VerifyLink(token); err == nil {
		if claims.Subject != sessionID {
			return nil, http.StatusForbidden, errors.New("this link is for another session")
		}
		c.orgID, c.role, c.key = claims.Org, rooms.Role(claims.Role), "link:"+claims.ID
	} else if claims, err := s.issuer.VerifyConsole(token); err == nil {
		c.orgID, c.role, c.key = claims.Org, rooms.RoleSpecialist, "specialist:"+claims.Subject
	} else {
		return nil, http.StatusUnauthorized, errors.New("send the session link's token or a console token")
	}
	sess, err := s.rooms.Session(r.Context(), c.orgID, sessionID)
	if err != nil {
		return nil, http.StatusNotFound, errors.New("no such session")
	}
	if sess.State == rooms.SessionEnded {
		return nil, http.StatusConflict, errors.New("the session has ended")
	}
	if claims, err := s.issuer.VerifyLink(token); err == nil {
		if err := sess.LinkOpen(claims.IssuedAt.Time, time.Now()); err != nil {
			return nil, http.StatusForbidden, err
		}
	}
	for _, p := range sess.Participants {
		if p.Key == c.key && p.State == rooms.ParticipantInCall {
			c.sender = wire.Sender{ParticipantID: p.ID, Role: string(p.Role), Name: p.Name}
		}
	}
	if c.sender.ParticipantID == "" {
		return nil, http.StatusForbidden, errors.New("join the call first")
	}
	c.session = sess
	return c, 0, nil
}

func (s *Server) handleUploadFile(w http.ResponseWriter, r *http.Request) {
	c, status, err := s.authorizeSession(r, r.PathValue("id"))
	if err != nil {
		problem.Write(w, r, status, "forbidden", err.Error())
		return
	}
	name := cleanFileName(r.URL.Query().Get("name"))
	if name == "" {
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "name: give the file's name as ?name=")
		return
	}
	rules, err := s.fileRules(r.Context(), c.orgID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	data, ok := readUpload(w, r, rules.maxBytes)
	if !ok {
		return
	}
	contentType, ext, allowed := rules.allow(http.DetectContentType(data))
	if !allowed {
		problem.Write(w, r, http.StatusUnsupportedMediaType, "file-type-not-allowed",
			fmt.Sprintf("files of type %s cannot be shared in this organisation", contentType))
		return
	}
	id := newObjectID("fil_")
	key, err := store.ObjectKey(c.orgID, c.session.ID, store.KindFiles, id+"."+ext)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if _, err := s.objects.Put(r.Context(), key, bytes.NewReader(data), int64(len(data)), contentType); err != nil {
		s.internalError(w, r, err)
		return
	}
	info := wire.FileInfo{ID: id, Name: name, Size: int64(len(data)), ContentType: contentType, URL: key}
	msg := wire.FileShared{Meta: wire.Meta{ID: newMessageID(), Time: time.Now().UTC(), From: c.sender}, File: info}
	if werr := s.publishTool(r.Context(), c.orgID, c.session.ID, wire.TypeFileShared, msg, true); werr != nil {
		_ = s.objects.Delete(context.WithoutCancel(r.Context()), key)
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", werr.Message)
		return
	}
	s.publishWebhook(r.Context(), c.orgID, webhooks.TypeFileShared, msg.ID, struct {
		SessionID string `json:"session_id"`
		FileID    string `json:"file_id"`
		Name      string `json:"name"`
		Size      int64  `json:"size"`
	}{c.session.ID, id, name, info.Size})
	info.URL = s.downloadURL(key)
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) handleUploadSnapshot(w http.ResponseWriter, r *http.Request) {
	c, status, err := s.authorizeSession(r, r.PathValue("id"))
	if err != nil {
		problem.Write(w, r, status, "forbidden", err.Error())
		return
	}
	if c.role != rooms.RoleCustomer {
		problem.Write(w, r, http.StatusForbidden, "forbidden", "snapshots come from the customer's camera")
		return
	}
	data, ok := readUpload(w, r, maxSnapshotSize)
	if !ok {
		return
	}
	contentType := http.DetectContentType(data)
	if contentType != "image/jpeg" && contentType != "image/png" {
		problem.Write(w, r, http.StatusUnsupportedMediaType, "not-a-photo", "snapshots are JPEG or PNG images")
		return
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		problem.Write(w, r, http.StatusUnprocessableEntity, "bad-image", "the image cannot be read")
		return
	}
	id := newObjectID("snp_")
	key, err := store.ObjectKey(c.orgID, c.session.ID, store.KindSnapshots, id+"."+allowedFileTypes[contentType])
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if _, err := s.objects.Put(r.Context(), key, bytes.NewReader(data), int64(len(data)), contentType); err != nil {
		s.internalError(w, r, err)
		return
	}
	info := wire.SnapshotInfo{ID: id, Width: cfg.Width, Height: cfg.Height, Size: int64(len(data)),
		ContentType: contentType, TakenAt: time.Now().UTC(), URL: key}
	msg := wire.SnapshotTaken{Meta: wire.Meta{ID: newMessageID(), Time: info.TakenAt, From: c.sender}, Snapshot: info}
	if werr := s.publishTool(r.Context(), c.orgID, c.session.ID, wire.TypeSnapshotTaken, msg, true); werr != nil {
		_ = s.objects.Delete(context.WithoutCancel(r.Context()), key)
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", werr.Message)
		return
	}
	s.publishWebhook(r.Context(), c.orgID, webhooks.TypeSnapshotTaken, msg.ID, struct {
		SessionID  string `json:"session_id"`
		SnapshotID string `json:"snapshot_id"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
	}{c.session.ID, id, cfg.Width, cfg.Height})
	info.URL = s.downloadURL(key)
	writeJSON(w, http.StatusCreated, info)
}

// sizeText writes a byte count for people.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%d bytes", n)
}

// readUpload reads a whole request body up to limit: an upload is stored only once it has
// fully arrived, so an interrupted upload leaves nothing behind.
func readUpload(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if r.ContentLength > limit {
		problem.Write(w, r, http.StatusRequestEntityTooLarge, "too-large", "uploads are limited to "+sizeText(limit))
		return nil, false
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		problem.Write(w, r, http.StatusRequestEntityTooLarge, "too-large", "uploads are limited to "+sizeText(limit))
		return nil, false
	case err != nil:
		problem.Write(w, r, http.StatusBadRequest, "incomplete-upload", "the upload did not complete")
		return nil, false
	case len(data) == 0:
		problem.Write(w, r, http.StatusBadRequest, "empty-upload", "the upload is empty")
		return nil, false
	}
	return data, true
}

// cleanFileName keeps a display name safe to show and to put in a header: a base name without
// quotes, control or format characters (bidi overrides spoof extensions), cut at whole
// characters.
func cleanFileName(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '"' || r == '/' || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	for len(name) > maxFileNameLen {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	name = strings.TrimSpace(name)
	if name == "." || name == ".." {
		return ""
	}
	return name
}

// downloadURL signs a short-lived same-origin URL for a stored object. Objects are served by
// Assist itself, so the object store need not be reachable from browsers.
func (s *Server) downloadURL(key string) string {
	org, session, ok := keyOwner(key)
	if !ok {
		return ""
	}
	tok, err := s.issuer.IssueDownload(org, session, key, downloadTTL)
	if err != nil {
		return ""
	}
	return s.baseURL + "/v1/downloads/" + tok
}

// keyOwner reads the organisation and session from "orgs/{org}/sessions/{session}/...".
func keyOwner(key string) (org, session string, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) < 5 || parts[0] != "orgs" || parts[2] != "sessions" {
		return "", "", false
	}
	return parts[1], parts[3], true
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	claims, err := s.issuer.VerifyDownload(r.PathValue("token"))
	if err != nil {
		problem.Write(w, r, http.StatusForbidden, "bad-download-link", "this download link is not valid or has expired")
		return
	}
	org, session, ok := keyOwner(claims.Object)
	if !ok || org != claims.Org || session != claims.Subject {
		problem.Write(w, r, http.StatusForbidden, "bad-download-link", "this download link is not valid")
		return
	}
	body, info, err := s.objects.Get(r.Context(), claims.Object)
	if errors.Is(err, store.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "the file no longer exists")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	defer body.Close()
	s.record(r.Context(), audit.Event{OrgID: org, Actor: audit.Actor{Kind: audit.ActorSystem, ID: "download-link"},
		Action: audit.ActionFileDownload, SessionID: session, Target: path.Base(claims.Object),
		RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent()})
	h := w.Header()
	h.Set("Content-Type", info.ContentType)
	h.Set("Content-Length", fmt.Sprint(info.Size))
	h.Set("Cache-Control", "private, max-age=600")
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox")
	disposition := "attachment"
	if strings.HasPrefix(info.ContentType, "image/") {
		disposition = "inline"
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": path.Base(claims.Object)}))
	_, _ = io.Copy(w, body)
}
