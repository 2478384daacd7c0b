package webclient

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAssets(t *testing.T) {
	h := Assets()
	tests := []struct {
		path, wantType string
	}{
		{"/assets/js/call.js", "text/javascript; charset=utf-8"},
		{"/assets/js/signal.js", "text/javascript; charset=utf-8"},
		{"/assets/js/session.js", "text/javascript; charset=utf-8"},
		{"/assets/js/media.js", "text/javascript; charset=utf-8"},
		{"/assets/js/ui.js", "text/javascript; charset=utf-8"},
		{"/assets/js/customer.js", "text/javascript; charset=utf-8"},
		{"/assets/js/console.js", "text/javascript; charset=utf-8"},
		{"/assets/js/tools.js", "text/javascript; charset=utf-8"},
		{"/assets/css/app.css", "text/css; charset=utf-8"},
		{"/assets/img/icon.svg", "image/svg+xml"},
	}
	for _, tc := range tests {
		t.Run(tc.path+" is served as "+tc.wantType, func(t *testing.T) {
			res := get(t, h, http.MethodGet, tc.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type %q, want %q", got, tc.wantType)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			if res.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if len(body(t, res)) == 0 {
				t.Error("empty body")
			}
		})
	}

	t.Run("a matching If-None-Match gets 304", func(t *testing.T) {
		etag := get(t, h, http.MethodGet, "/assets/js/call.js", nil).Header.Get("ETag")
		res := get(t, h, http.MethodGet, "/assets/js/call.js", map[string]string{"If-None-Match": etag})
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("status %d, want 304", res.StatusCode)
		}
	})

	t.Run("a prefix stripped by http.StripPrefix works too", func(t *testing.T) {
		res := get(t, http.StripPrefix("/assets", h), http.MethodGet, "/assets/css/app.css", nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("status %d", res.StatusCode)
		}
	})

	t.Run("HEAD has headers and no body", func(t *testing.T) {
		res := get(t, h, http.MethodHead, "/assets/js/call.js", nil)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") == "" || body(t, res) != "" {
			t.Errorf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
	})

	for _, p := range []string{
		"/assets/customer.html", "/assets/error.html", "/assets/js/", "/assets/js", "/assets/",
		"/assets/js/nope.js", "/assets/../webclient.go", "/assets/js/../customer.html",
	} {
		t.Run(p+" is not found", func(t *testing.T) {
			if res := get(t, h, http.MethodGet, p, nil); res.StatusCode != http.StatusNotFound {
				t.Errorf("status %d, want 404", res.StatusCode)
			}
		})
	}

	t.Run("POST is not allowed", func(t *testing.T) {
		res := get(t, h, http.MethodPost, "/assets/js/call.js", nil)
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") == "" {
			t.Errorf("status %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
		}
	})
}

// Every /assets/ URL that a page or a module refers to must exist, and
// relative module imports must resolve to embedded files.
func TestReferencedAssetsExist(t *testing.T) {
	h := Assets()
	abs := regexp.MustCompile(`/assets/[A-Za-z0-9_./-]+`)
	rel := regexp.MustCompile(`from '(\./[A-Za-z0-9_.-]+)'`)
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		for _, ref := range abs.FindAllString(string(data), -1) {
			if res := get(t, h, http.MethodGet, ref, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s refers to %s: status %d", p, ref, res.StatusCode)
			}
		}
		if strings.HasSuffix(p, ".js") {
			for _, m := range rel.FindAllStringSubmatch(string(data), -1) {
				if _, err := static.ReadFile("static/js/" + strings.TrimPrefix(m[1], "./")); err != nil {
					t.Errorf("%s imports %s: %v", p, m[1], err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The pages must run under the CSP: no inline scripts, styles or handlers.
func TestPagesHaveNoInlineCode(t *testing.T) {
	inline := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>`),        // checked below for src
		regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		regexp.MustCompile(`(?i)javascript:`),
	}
	for _, name := range []string{"static/customer.html", "static/console.html", "static/error.html"} {
		data, err := static.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		page := string(data)
		for i, re := range inline {
			for _, m := range re.FindAllString(page, -1) {
				if i == 1 && strings.Contains(m, `src="/assets/`) {
					continue
				}
				t.Errorf("%s: inline code %q", name, m)
			}
		}
	}
}

func TestPages(t *testing.T) {
	tests := []struct {
		name   string
		serve  http.HandlerFunc
		target string
		want   string
	}{
		{"the customer page loads customer.js", ServeCustomer, "/c/abc.def.ghi", `src="/assets/js/customer.js"`},
		{"the console page loads console.js", ServeConsole, "/console/", `src="/assets/js/console.js"`},
		{"a specialist link gets the console", ServeConsole, "/s/abc.def.ghi", `src="/assets/js/console.js"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, tc.serve, http.MethodGet, tc.target, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store (the URL holds a token)", got)
			}
			if got := res.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q", got)
			}
			if b := body(t, res); !strings.Contains(b, tc.want) {
				t.Errorf("body lacks %s", tc.want)
			}
		})
	}
	t.Run("POST to a page is not allowed", func(t *testing.T) {
		if res := get(t, http.HandlerFunc(ServeCustomer), http.MethodPost, "/c/x", nil); res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d", res.StatusCode)
		}
	})
}

func TestServeError(t *testing.T) {
	t.Run("it writes the status, the title and the message", func(t *testing.T) {
		rec := httptest.NewRecorder()
		ServeError(rec, http.StatusGone, "This link has expired", "Ask for a new link.")
		res := rec.Result()
		if res.StatusCode != http.StatusGone {
			t.Errorf("status %d, want 410", res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("Content-Type %q", got)
		}
		if res.Header.Get("Content-Security-Policy") == "" {
			t.Error("no Content-Security-Policy")
		}
		b := body(t, res)
		for _, want := range []string{"This link has expired", "Ask for a new link.", "410", `href="/assets/css/app.css"`} {
			if !strings.Contains(b, want) {
				t.Errorf("body lacks %q", want)
			}
		}
	})

	t.Run("it escapes HTML in the title and the message", func(t *testing.T) {
		rec := httptest.NewRecorder()
		ServeError(rec, http.StatusNotFound, `<script>alert("t")</script>`, `<img src=x onerror=alert(1)> & "quotes"`)
		b := body(t, rec.Result())
		for _, bad := range []string{`<script>alert`, `<img src=x`} {
			if strings.Contains(b, bad) {
				t.Errorf("body holds unescaped %q", bad)
			}
		}
		for _, want := range []string{`&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;`, `&lt;img src=x onerror=alert(1)&gt; &amp; &#34;quotes&#34;`} {
			if !strings.Contains(b, want) {
				t.Errorf("body lacks escaped %q", want)
			}
		}
	})

	t.Run("a status that is not an error becomes 500", func(t *testing.T) {
		rec := httptest.NewRecorder()
		ServeError(rec, http.StatusOK, "", "")
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("status %d", rec.Code)
		}
		if !strings.Contains(rec.Body.String(), "Internal Server Error") {
			t.Error("an empty title does not fall back to the status text")
		}
	})
}

func TestSecurityHeaders(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	res := get(t, SecurityHeaders(inner), http.MethodGet, "/anything", nil)
	want := map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Permissions-Policy":      PermissionsPolicy,
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	for _, directive := range []string{
		"default-src 'self'", "connect-src 'self' ws: wss:", "img-src 'self' data: blob:", "media-src 'self' blob:",
	} {
		if !strings.Contains(ContentSecurityPolicy, directive) {
			t.Errorf("the CSP lacks %q", directive)
		}
	}
	for _, feature := range []string{"camera=(self)", "microphone=(self)", "geolocation=(self)", "display-capture=(self)"} {
		if !strings.Contains(PermissionsPolicy, feature) {
			t.Errorf("the Permissions-Policy lacks %q", feature)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe-inline") || strings.Contains(ContentSecurityPolicy, "unsafe-eval") {
		t.Error("the CSP allows inline code")
	}
	if body(t, res) != "ok" {
		t.Error("the wrapped handler did not run")
	}
}
