// Package webclient is the browser side of Assist: the customer page that a
// link from an SMS or an email opens, the specialist console, the error page
// for bad links, and the ES modules and CSS they load. Everything is embedded
// in the binary and served as is; there is no build step.
//
// The server mounts the pieces on its own routes (see docs/design.md):
//
//	mux.Handle("GET /assets/", webclient.Assets())
//	mux.HandleFunc("GET /console/", webclient.ServeConsole)
//	mux.HandleFunc("GET /c/{jwt}", ...) // check the link, then webclient.ServeCustomer or webclient.ServeError
//	mux.HandleFunc("GET /s/{jwt}", ...) // check the link, then webclient.ServeConsole or webclient.ServeError
//	mux.HandleFunc("GET /test", webclient.ServeDiagnostics)
//	handler := webclient.SecurityHeaders(mux)
//
// The pages hold no inline script or style, so they run under the strict
// [ContentSecurityPolicy] that [SecurityHeaders] sets.
//
// # Hooks for end-to-end tests
//
// Both pages keep document.body.dataset.state current: idle (join form,
// sign-in or session list), connecting, waiting (customer in the waiting
// room), in-call, reconnecting (socket lost, joining again), denied, ended,
// error. window.assistDebug has pc() (the RTCPeerConnection or null),
// framesDecoded() (a promise of the sum of inbound video framesDecoded),
// state(), localStream() and participantId(). Stable ids, each also a
// data-testid:
//
//   - customer: #name-input, #join-button, #cancel-button (leave the waiting
//     room), #hangup-button, #mic-button, #camera-button, #queue-position,
//     #remote-videos (one figure.tile > video per remote stream), #preview,
//     #self-view, #end-title, #end-message.
//   - console: #login-email, #login-password, #login-button, #login-error,
//     #new-session-button, #customer-link, #session-list (li[data-session-id]
//     with button[data-testid=open-session][data-session-id]), #queue-list
//     (li[data-participant-id] with button[data-testid=admit] and
//     button[data-testid=deny], both [data-participant-id]), #deny-reason and
//     #deny-confirm-button (the Deny dialog), #roster-list, #leave-button,
//     #end-button then #end-confirm-button (End asks first), #back-button.
//
// The in-session tools (static/js/tools.js) add, on both pages: #chat-list
// (li.chat-item with .chat-text; a shared file is a[data-testid=file-link]),
// #chat-input and #chat-send-button, #file-input and #send-file-button,
// #share-screen-button; window.assistDebug.annotations() returns the strokes
// the page shows, with points normalised to the video frame. The customer
// page: #self-annotations (the overlay on #self-view), #camera-notice and
// #camera-refuse-button. The console: #snapshot-button, #geolocation-button,
// #camera-controls (data-received="true" once the customer's camera
// capabilities came) with #flip-button, #torch-button and #zoom-input shown
// only when supported, #camera-status, the drawing tools (.tool-button
// [data-tool], #annotation-color, #undo-button, #clear-button), a
// canvas.annotation-layer over the customer's video tile, #gallery (snapshot
// img[data-testid=snapshot]) and #location-result (a[data-testid=location-map]).
//
// The setup test (static/js/diagnostics.js) runs on its own page, /test
// (body.page-diagnostics; data-state idle, running, done or error;
// #diag-start, #diag-speaker, #diag-preview, #diag-level, #diag-result;
// window.assistDebug.diagnostics() is the result, the `diagnostics` payload
// of docs/design.md), and on the customer page while waiting
// (#waiting-diagnostics with #waiting-level, #waiting-diag-result,
// #waiting-speaker and #waiting-diag-again; assistDebug.diagnostics()). Both
// show the verdict as [data-testid=diag-verdict][data-verdict]. The console
// shows each customer's latest result as span[data-testid=diagnostics]
// [data-participant-id][data-verdict] in #queue-list and #roster-list.
//
// The package browsertest drives these pages in a real Chromium.
package webclient

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy that [SecurityHeaders] sets. The pages
// load scripts, styles and images from their own origin only, and talk to the
// signaling socket on their own host.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self' ws: wss:; " +
	"img-src 'self' data: blob:; media-src 'self' blob:; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// PermissionsPolicy lets the pages (and nothing they might embed) use the
// camera, the microphone, the location and screen sharing.
const PermissionsPolicy = "camera=(self), microphone=(self), geolocation=(self), display-capture=(self)"

// assetDirs are the folders of static that Assets serves. The HTML pages and
// the error template are served by their own functions, never as assets.
var assetDirs = []string{"js", "css", "img"}

// contentTypes pins the types of the assets: a module script must come with a
// JavaScript type (the browser refuses it otherwise, with nosniff), and the
// type must not depend on the host's /etc/mime.types.
var contentTypes = map[string]string{
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".webp":  "image/webp",
	".woff2": "font/woff2",
	".json":  "application/json",
	".map":   "application/json",
}

// errorPage is parsed once; it is never changed after init.
var errorPage = template.Must(template.ParseFS(static, "static/error.html"))

type asset struct {
	data        []byte
	contentType string
	etag        string
}

type assetHandler struct {
	files map[string]asset // key: path below /assets/, e.g. "js/call.js"
}

// Assets returns the handler for GET and HEAD /assets/...: the JavaScript
// modules, the stylesheet and the images. Mount it on "/assets/"; it reads
// the full request path (a prefix already stripped with http.StripPrefix
// works too). The file names carry no version, so responses are
// "Cache-Control: no-cache" with a strong ETag: browsers keep them and
// revalidate with a cheap 304.
func Assets() http.Handler {
	h := &assetHandler{files: make(map[string]asset)}
	for _, dir := range assetDirs {
		err := fs.WalkDir(static, "static/"+dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := static.ReadFile(p)
			if err != nil {
				return err
			}
			ct, ok := contentTypes[path.Ext(p)]
			if !ok {
				ct = http.DetectContentType(data)
			}
			sum := sha256.Sum256(data)
			h.files[strings.TrimPrefix(p, "static/")] = asset{
				data:        data,
				contentType: ct,
				etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
			}
			return nil
		})
		if err != nil {
			// The files are embedded: a failure here is a broken build.
			panic("webclient: reading embedded assets: " + err.Error())
		}
	}
	return h
}

func (h *assetHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/assets")
	name = strings.TrimPrefix(name, "/")
	a, ok := h.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.data))
}

// ServeCustomer writes the customer page (GET /c/{jwt}). The caller has
// checked the link already; the page reads the token from its own URL.
func ServeCustomer(w http.ResponseWriter, r *http.Request) {
	servePage(w, r, "static/customer.html")
}

// ServeConsole writes the specialist console (GET /console/ and, once the
// link is checked, GET /s/{jwt}). On /s/{jwt} the page opens that session
// with the link token; elsewhere it shows the sign-in form or the session
// list.
func ServeConsole(w http.ResponseWriter, r *http.Request) {
	servePage(w, r, "static/console.html")
}

// ServeDiagnostics writes the setup test page (GET /test): camera, microphone,
// speaker and a network test through the SFU's echo (/v1/echo), with a
// verdict. It needs no link.
func ServeDiagnostics(w http.ResponseWriter, r *http.Request) {
	servePage(w, r, "static/diagnostics.html")
}

func servePage(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	data, err := static.ReadFile(name)
	if err != nil {
		http.Error(w, "page not found", http.StatusInternalServerError)
		return
	}
	setSecurityHeaders(w.Header(), r)
	setPageHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}

// ServeError writes the error page with the given status, for example a 410
// for an expired link. title and message are escaped; they may hold anything.
func ServeError(w http.ResponseWriter, status int, title, message string) {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if title == "" {
		title = http.StatusText(status)
	}
	var buf bytes.Buffer
	err := errorPage.Execute(&buf, struct {
		Status  int
		Title   string
		Message string
	}{status, title, message})
	if err != nil {
		http.Error(w, title, status)
		return
	}
	setSecurityHeaders(w.Header(), nil)
	setPageHeaders(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// setPageHeaders marks a page as private: the URL of a page holds a link
// token, so neither caches nor search engines may keep it.
func setPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Robots-Tag", "noindex, nofollow")
}

// SecurityHeaders wraps h so that every response carries the content
// security policy, nosniff, no referrer (page URLs hold tokens), no framing
// and the permissions policy for camera, microphone, location and screen
// sharing.
func SecurityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header(), r)
		h.ServeHTTP(w, r)
	})
}

func setSecurityHeaders(h http.Header, r *http.Request) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Permissions-Policy", PermissionsPolicy)
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r != nil && r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=63072000")
	}
}
