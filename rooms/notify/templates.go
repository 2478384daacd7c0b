package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log/slog"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketTemplates holds organisations' own templates, so every node renders with them.
// Key: {org}.{kind}.{channel}.{language}; value: JSON {"subject", "body"}.
const BucketTemplates = "assist_notify_templates"

const (
	fallbackLanguage = "en"
	maxTemplateBytes = 16 << 10 // source of one subject or body
	maxRenderedBytes = 64 << 10 // what one body may render to
	maxSubjectRunes  = 250
)

// Rendered is a notification ready to send. SMS senders use Text only.
type Rendered struct {
	ID       string // the notification ID: email senders use it as the Message-ID
	Language string // the language of the template that was used
	Subject  string // email only; one line
	Text     string
	HTML     string // email only; made from Text, with the link as a link
}

// Templates renders notifications: an organisation's own template where it set one, otherwise
// the built-in one.
//
// Templates are Go text/template. They see these fields: .CustomerName, .OrganizationName,
// .Link, .TimeZone (IANA name), .Start and .End (time.Time in that zone; .End may be zero), and
// phrases in the template's language: .Date ("Monday, 3 March 2026"), .StartTime, .EndTime
// ("" without an end), .When (date, times and zone together) and .Until (.End's date, time and
// zone, "" without an end: how long a call-back's or an invitation's link is valid). .InvitedBy
// names who invites an expert (invitation only; may be empty). Those phrases come in English,
// French, German and Spanish; a template in another language gets them in English and may format
// .Start itself ({{.Start.Format "02/01/2006 15:04"}}).
//
// Choosing a template for language "fr-CA": the organisation's "fr-ca", the built-in "fr-ca" (none
// ship), the organisation's "fr", the built-in "fr"; then the same for English. So a customer
// whose language has a built-in template gets it even when the organisation only rewrote English.
type Templates struct {
	mu        sync.RWMutex
	overrides map[templateKey]override

	kv      jetstream.KeyValue // nil: overrides live in this process only
	watcher jetstream.KeyWatcher
	done    chan struct{} // closed when the watcher goroutine has returned
	log     *slog.Logger
}

type templateKey struct {
	org     string
	kind    Kind
	channel Channel
	lang    string
}

func (k templateKey) kvKey() string {
	return k.org + "." + string(k.kind) + "." + string(k.channel) + "." + k.lang
}

func parseTemplateKey(s string) (templateKey, bool) {
	p := strings.Split(s, ".")
	if len(p) != 4 {
		return templateKey{}, false
	}
	k := templateKey{org: p[0], kind: Kind(p[1]), channel: Channel(p[2]), lang: p[3]}
	return k, k.valid() == nil
}

func (k templateKey) valid() error {
	switch {
	case !validToken(k.org):
		return fmt.Errorf("org id %q", k.org)
	case !k.kind.valid():
		return fmt.Errorf("kind %q", k.kind)
	case !k.channel.valid():
		return fmt.Errorf("channel %q", k.channel)
	case !langRe.MatchString(k.lang):
		return fmt.Errorf("language %q is not a BCP 47 tag", k.lang)
	}
	return nil
}

// compiled is a parsed template; subject is nil for SMS.
type compiled struct {
	subject *template.Template
	body    *template.Template
}

type override struct {
	compiled
	source  storedTemplate
	rev     uint64 // KV revision, so an older update never replaces a newer one
	deleted bool   // a tombstone, kept so a late older update cannot bring the template back
}

type storedTemplate struct {
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body"`
}

type builtinKey struct {
	lang    string
	kind    Kind
	channel Channel
}

// builtins are the shipped templates, parsed once; never changed after.
var builtins = compileBuiltins()

func compileBuiltins() map[builtinKey]compiled {
	out := make(map[builtinKey]compiled)
	for lang := range builtinLanguages {
		for _, kind := range Kinds() {
			for _, ch := range Channels() {
				subject, body, ok := builtinSource(lang, kind, ch)
				if !ok {
					panic(fmt.Sprintf("notify: no built-in %s %s template in %s", kind, ch, lang))
				}
				c, err := compile(ch, subject, body)
				if err != nil {
					panic(fmt.Sprintf("notify: built-in %s %s template in %s: %v", kind, ch, lang, err))
				}
				out[builtinKey{lang, kind, ch}] = c
			}
		}
	}
	return out
}

// NewTemplates returns templates whose organisation overrides live in this process only.
func NewTemplates() *Templates {
	return &Templates{overrides: make(map[templateKey]override), log: slog.Default()}
}

// OpenTemplates returns templates whose organisation overrides live in the KV bucket
// BucketTemplates, creating it if needed, and follows the bucket so that an override set on any
// node is used on every node. It returns once the overrides already stored are loaded. Close
// stops following.
func OpenTemplates(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) (*Templates, error) {
	if log == nil {
		log = slog.Default()
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketTemplates,
		Description: "Assist: organisations' notification templates",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("notify: bucket %s: %w", BucketTemplates, err)
	}
	// The watcher lives until Close, not until ctx (which only bounds the start).
	w, err := kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("notify: watch %s: %w", BucketTemplates, err)
	}
	t := &Templates{
		overrides: make(map[templateKey]override),
		kv:        kv,
		watcher:   w,
		done:      make(chan struct{}),
		log:       log.With("bucket", BucketTemplates),
	}
	loaded := make(chan struct{})
	go t.follow(loaded)
	select {
	case <-loaded:
		return t, nil
	case <-t.done:
		return nil, fmt.Errorf("notify: watch %s stopped while loading", BucketTemplates)
	case <-ctx.Done():
		t.Close()
		return nil, fmt.Errorf("notify: load %s: %w", BucketTemplates, ctx.Err())
	}
}

// follow applies the bucket's entries until the watcher stops; loaded is closed once the entries
// that existed at the start have been applied.
func (t *Templates) follow(loaded chan struct{}) {
	defer close(t.done)
	initial := true
	for e := range t.watcher.Updates() {
		if e == nil {
			if initial {
				initial = false
				close(loaded)
			}
			continue
		}
		t.apply(e)
	}
}

func (t *Templates) apply(e jetstream.KeyValueEntry) {
	key, ok := parseTemplateKey(e.Key())
	if !ok {
		t.log.Warn("ignoring a template with a bad key", "key", e.Key())
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		t.set(key, nil, e.Revision())
		return
	}
	var src storedTemplate
	if err := json.Unmarshal(e.Value(), &src); err != nil {
		t.log.Warn("ignoring a template that is not JSON", "key", e.Key(), "err", err)
		return
	}
	c, err := compileChecked(key.channel, src.Subject, src.Body)
	if err != nil {
		t.log.Warn("ignoring a template that does not compile", "key", e.Key(), "err", err)
		return
	}
	t.set(key, &override{compiled: c, source: src}, e.Revision())
}

// set installs o (nil removes) unless a newer revision is already in place.
func (t *Templates) set(key templateKey, o *override, rev uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.overrides[key]; ok && cur.rev > rev {
		return
	}
	if o == nil {
		o = &override{deleted: true}
	}
	o.rev = rev
	t.overrides[key] = *o
}

// Close stops following the bucket. Templates still render afterwards, with what they had.
func (t *Templates) Close() {
	if t.watcher == nil {
		return
	}
	_ = t.watcher.Stop()
	<-t.done
}

// SetOrgTemplate sets an organisation's template for one kind, channel and language. Email
// templates need a subject; SMS templates must not have one. The template is parsed and tried
// on sample data before it is accepted; errors wrap ErrInvalidTemplate.
func (t *Templates) SetOrgTemplate(ctx context.Context, orgID string, kind Kind, channel Channel, lang, subject, body string) error {
	key := templateKey{org: orgID, kind: kind, channel: channel, lang: normalizeLanguage(lang)}
	if err := key.valid(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTemplate, err)
	}
	c, err := compileChecked(channel, subject, body)
	if err != nil {
		return err
	}
	src := storedTemplate{Subject: subject, Body: body}
	var rev uint64
	if t.kv != nil {
		data, err := json.Marshal(src)
		if err != nil {
			return err
		}
		if rev, err = t.kv.Put(ctx, key.kvKey(), data); err != nil {
			return fmt.Errorf("notify: store template: %w", err)
		}
	} else {
		t.mu.RLock()
		rev = t.overrides[key].rev + 1
		t.mu.RUnlock()
	}
	t.set(key, &override{compiled: c, source: src}, rev)
	return nil
}

// DeleteOrgTemplate removes an organisation's template; the built-in one is used again.
func (t *Templates) DeleteOrgTemplate(ctx context.Context, orgID string, kind Kind, channel Channel, lang string) error {
	key := templateKey{org: orgID, kind: kind, channel: channel, lang: normalizeLanguage(lang)}
	if err := key.valid(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTemplate, err)
	}
	t.mu.RLock()
	rev := t.overrides[key].rev + 1
	t.mu.RUnlock()
	if t.kv != nil {
		if err := t.kv.Delete(ctx, key.kvKey()); err != nil {
			return fmt.Errorf("notify: delete template: %w", err)
		}
		// The watcher brings the delete marker with its real revision, which is at least rev.
	}
	t.set(key, nil, rev)
	return nil
}

// OrgTemplate returns an organisation's own template source, if it set one.
func (t *Templates) OrgTemplate(orgID string, kind Kind, channel Channel, lang string) (subject, body string, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	o, ok := t.overrides[templateKey{orgID, kind, channel, normalizeLanguage(lang)}]
	if !ok || o.deleted {
		return "", "", false
	}
	return o.source.Subject, o.source.Body, true
}

// BuiltinTemplate returns the source of a shipped template (a starting point for an editor).
func BuiltinTemplate(kind Kind, channel Channel, lang string) (subject, body string, ok bool) {
	return builtinSource(normalizeLanguage(lang), kind, channel)
}

// Render renders msg with the organisation's template for its kind, channel and language.
func (t *Templates) Render(orgID string, msg Message) (Rendered, error) {
	c, lang, err := t.choose(orgID, msg.Kind, msg.Channel, normalizeLanguage(msg.Language))
	if err != nil {
		return Rendered{}, err
	}
	view, err := newTemplateView(msg.Data, baseLanguage(lang))
	if err != nil {
		return Rendered{}, err
	}
	return render(c, msg, lang, view)
}

func render(c compiled, msg Message, lang string, view templateView) (Rendered, error) {
	r := Rendered{ID: msg.ID, Language: lang}
	text, err := execute(c.body, view)
	if err != nil {
		return Rendered{}, err
	}
	r.Text = tidyText(text)
	if r.Text == "" {
		return Rendered{}, errors.New("notify: the template rendered an empty body")
	}
	if msg.Channel != ChannelEmail {
		return r, nil
	}
	subject, err := execute(c.subject, view)
	if err != nil {
		return Rendered{}, err
	}
	r.Subject = tidySubject(subject)
	if r.Subject == "" {
		return Rendered{}, errors.New("notify: the template rendered an empty subject")
	}
	if r.HTML, err = htmlFromText(lang, r.Subject, r.Text, view.Link); err != nil {
		return Rendered{}, err
	}
	return r, nil
}

// choose finds the template for lang, falling back as the Templates comment says.
func (t *Templates) choose(orgID string, kind Kind, channel Channel, lang string) (compiled, string, error) {
	if !kind.valid() || !channel.valid() {
		return compiled{}, "", fmt.Errorf("notify: no template for %q %q", kind, channel)
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, l := range languageCandidates(lang) {
		if o, ok := t.overrides[templateKey{orgID, kind, channel, l}]; ok && !o.deleted {
			return o.compiled, l, nil
		}
		if c, ok := builtins[builtinKey{l, kind, channel}]; ok {
			return c, l, nil
		}
	}
	return compiled{}, "", fmt.Errorf("notify: no template for %s %s", kind, channel) // unreachable: English ships
}

// languageCandidates lists "pt-br-x" as "pt-br-x", "pt-br", "pt", then "en".
func languageCandidates(lang string) []string {
	var out []string
	for l := lang; l != ""; {
		out = append(out, l)
		i := strings.LastIndexByte(l, '-')
		if i < 0 {
			break
		}
		l = l[:i]
	}
	if len(out) == 0 || out[len(out)-1] != fallbackLanguage {
		out = append(out, fallbackLanguage)
	}
	return out
}

func baseLanguage(lang string) string {
	base, _, _ := strings.Cut(lang, "-")
	return base
}

// compile parses a subject (email only) and a body.
func compile(channel Channel, subject, body string) (compiled, error) {
	var c compiled
	var err error
	if channel == ChannelEmail {
		if c.subject, err = template.New("subject").Option("missingkey=error").Parse(subject); err != nil {
			return compiled{}, err
		}
	}
	if c.body, err = template.New("body").Option("missingkey=error").Parse(body); err != nil {
		return compiled{}, err
	}
	return c, nil
}

// compileChecked is compile for templates from outside: it checks sizes and renders sample data,
// so a template that names a field we do not have is refused now, not when a customer waits.
func compileChecked(channel Channel, subject, body string) (compiled, error) {
	bad := func(format string, args ...any) (compiled, error) {
		return compiled{}, fmt.Errorf("%w: %s", ErrInvalidTemplate, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.TrimSpace(body) == "":
		return bad("the body is empty")
	case channel == ChannelEmail && strings.TrimSpace(subject) == "":
		return bad("an email template needs a subject")
	case channel == ChannelSMS && subject != "":
		return bad("an SMS template has no subject")
	case len(subject) > maxTemplateBytes || len(body) > maxTemplateBytes:
		return bad("longer than %d bytes", maxTemplateBytes)
	case !utf8.ValidString(subject) || !utf8.ValidString(body):
		return bad("not UTF-8")
	}
	c, err := compile(channel, subject, body)
	if err != nil {
		return bad("%v", err)
	}
	sample := Message{ID: "sample", Channel: channel, Data: TemplateData{
		CustomerName: "Ann Example", OrganizationName: "Example Clinic", Link: "https://assist.example/c/sample",
		Start: time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC), End: time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC),
		TimeZone: "UTC", InvitedBy: "Sam Specialist",
	}}
	view, err := newTemplateView(sample.Data, fallbackLanguage)
	if err != nil {
		return compiled{}, err
	}
	if _, err := render(c, sample, fallbackLanguage, view); err != nil {
		return bad("%v", err)
	}
	return c, nil
}

func execute(t *template.Template, view templateView) (string, error) {
	var buf bytes.Buffer
	if err := t.Execute(&limitedWriter{w: &buf, n: maxRenderedBytes}, view); err != nil {
		return "", fmt.Errorf("notify: render %s: %w", t.Name(), err)
	}
	return buf.String(), nil
}

type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("rendered text is longer than %d bytes", maxRenderedBytes)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// tidyText trims trailing blanks on each line, keeps at most one empty line in a row and drops
// leading and trailing empty lines.
func tidyText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	blank := 0
	for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		line = strings.TrimRight(line, " \t\r")
		if line == "" {
			blank++
			continue
		}
		if b.Len() > 0 {
			b.WriteString(strings.Repeat("\n", min(blank, 1)+1))
		}
		blank = 0
		b.WriteString(line)
	}
	return b.String()
}

// tidySubject makes one line of at most maxSubjectRunes runes.
func tidySubject(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxSubjectRunes {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:maxSubjectRunes-1])) + "…"
}

// The HTML part is the text part set as paragraphs, with the customer's link made a link, so the
// two parts never say different things.
var htmlLayout = htmltemplate.Must(htmltemplate.New("email").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Subject}}</title></head>
<body style="font-family: sans-serif; line-height: 1.5;">
{{range .Paragraphs}}<p>{{range $i, $line := .}}{{if $i}}<br>
{{end}}{{range $line}}{{if .Href}}<a href="{{.Href}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}{{end}}{{end}}</p>
{{end}}</body>
</html>
`))

type htmlSpan struct{ Text, Href string }

func htmlFromText(lang, subject, text, link string) (string, error) {
	var paragraphs [][][]htmlSpan
	for para := range strings.SplitSeq(text, "\n\n") {
		var lines [][]htmlSpan
		for line := range strings.SplitSeq(para, "\n") {
			lines = append(lines, linkSpans(line, link))
		}
		paragraphs = append(paragraphs, lines)
	}
	var buf bytes.Buffer
	err := htmlLayout.Execute(&buf, struct {
		Lang, Subject string
		Paragraphs    [][][]htmlSpan
	}{lang, subject, paragraphs})
	return buf.String(), err
}

func linkSpans(line, link string) []htmlSpan {
	var out []htmlSpan
	for link != "" {
		before, after, found := strings.Cut(line, link)
		if !found {
			break
		}
		if before != "" {
			out = append(out, htmlSpan{Text: before})
		}
		out = append(out, htmlSpan{Text: link, Href: link})
		line = after
	}
	if line != "" {
		out = append(out, htmlSpan{Text: line})
	}
	return out
}
