package notify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestBuiltinTemplatesRenderEveryKindChannelAndLanguage(t *testing.T) {
	languages := []struct {
		lang, word, month, time string
	}{
		{"en", "appointment", "March", "2:30 PM"},
		{"fr", "rendez-vous", "mars", "14:30"},
		{"de", "Videotermin", "März", "14:30"},
		{"es", "cita", "marzo", "14:30"},
	}
	tpl := NewTemplates()
	for _, l := range languages {
		// The appointment kinds; call-backs and invitations, which have no appointment time, are
		// checked in kinds_test.go.
		for _, kind := range []Kind{KindBooked, KindRescheduled, KindCancelled, KindReminder} {
			for _, ch := range Channels() {
				t.Run(l.lang+" "+string(kind)+" "+string(ch), func(t *testing.T) {
					msg := testMessage("m1", ch, kind, l.lang)
					r, err := tpl.Render("org_test", msg)
					if err != nil {
						t.Fatal(err)
					}
					if r.Language != l.lang || r.ID != "m1" {
						t.Errorf("language %q id %q", r.Language, r.ID)
					}
					for _, want := range []string{l.word, l.month, l.time, "Europe/Paris", "Example Clinic", msg.Data.Link} {
						if !strings.Contains(r.Text, want) {
							t.Errorf("text lacks %q:\n%s", want, r.Text)
						}
					}
					if strings.Contains(r.Text, "<no value>") || strings.Contains(r.Subject, "<no value>") {
						t.Errorf("a field is missing:\n%s\n%s", r.Subject, r.Text)
					}
					switch ch {
					case ChannelEmail:
						if !strings.Contains(r.Text, "Ann Martin") {
							t.Errorf("email does not greet the customer:\n%s", r.Text)
						}
						if r.Subject == "" || strings.ContainsAny(r.Subject, "\r\n") {
							t.Errorf("subject %q", r.Subject)
						}
						if !strings.Contains(r.HTML, `<a href="https://assist.example/c/eyJhbGciOiJIUzI1NiJ9.abc?x=1&amp;y=2">`) ||
							!strings.Contains(r.HTML, `lang="`+l.lang+`"`) {
							t.Errorf("html:\n%s", r.HTML)
						}
					case ChannelSMS:
						if r.Subject != "" || r.HTML != "" || strings.Contains(r.Text, "\n") {
							t.Errorf("an SMS is one line of text: %+v", r)
						}
					}
				})
			}
		}
	}
}

func TestTemplateLanguageFallback(t *testing.T) {
	tpl := NewTemplates()
	cases := []struct{ asked, used string }{
		{"", "en"},
		{"ja", "en"},
		{"pt_BR", "en"},
		{"fr-CA", "fr"},
		{"DE-at", "de"},
		{"es-419", "es"},
	}
	for _, c := range cases {
		t.Run(c.asked+" is rendered in "+c.used, func(t *testing.T) {
			r, err := tpl.Render("org_test", testMessage("m1", ChannelEmail, KindBooked, c.asked))
			if err != nil {
				t.Fatal(err)
			}
			if r.Language != c.used {
				t.Fatalf("rendered in %q", r.Language)
			}
		})
	}
}

func TestTemplateOptionalFields(t *testing.T) {
	tpl := NewTemplates()
	msg := testMessage("m1", ChannelEmail, KindCancelled, "en")
	msg.Data.CustomerName, msg.Data.Link, msg.Data.End, msg.Data.TimeZone = "", "", time.Time{}, ""
	r, err := tpl.Render("org_test", msg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Text, "Hello,\n") || strings.Contains(r.Text, "book a new time") ||
		!strings.Contains(r.Text, "Monday, 2 March 2026 at 1:30 PM (UTC)") {
		t.Fatalf("text:\n%s", r.Text)
	}
}

func TestTemplateHTMLEscapesWhatCustomersType(t *testing.T) {
	tpl := NewTemplates()
	msg := testMessage("m1", ChannelEmail, KindBooked, "en")
	msg.Data.CustomerName = `<script>alert("x")</script>`
	r, err := tpl.Render("org_test", msg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;") {
		t.Fatalf("not escaped:\n%s", r.HTML)
	}
}

func TestOrgTemplates(t *testing.T) {
	ctx := context.Background()
	tpl := NewTemplates()
	err := tpl.SetOrgTemplate(ctx, "org_test", KindBooked, ChannelEmail, "en",
		"Booked: {{.Date}}", "Dear {{.CustomerName}}, see you at {{.StartTime}}. {{.Link}}")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the organisation's template is used for its language", func(t *testing.T) {
		r, err := tpl.Render("org_test", testMessage("m1", ChannelEmail, KindBooked, "en-GB"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Subject != "Booked: Monday, 2 March 2026" || !strings.HasPrefix(r.Text, "Dear Ann Martin, see you at 2:30 PM.") {
			t.Fatalf("%q\n%s", r.Subject, r.Text)
		}
	})
	t.Run("other organisations keep the built-in template", func(t *testing.T) {
		r, _ := tpl.Render("org_other", testMessage("m1", ChannelEmail, KindBooked, "en"))
		if !strings.HasPrefix(r.Text, "Hello Ann Martin,") {
			t.Fatalf("%s", r.Text)
		}
	})
	t.Run("a language with a built-in template keeps it", func(t *testing.T) {
		r, _ := tpl.Render("org_test", testMessage("m1", ChannelEmail, KindBooked, "fr"))
		if !strings.HasPrefix(r.Text, "Bonjour Ann Martin,") {
			t.Fatalf("%s", r.Text)
		}
	})
	t.Run("a language without one falls back to the organisation's English", func(t *testing.T) {
		r, _ := tpl.Render("org_test", testMessage("m1", ChannelEmail, KindBooked, "it"))
		if !strings.HasPrefix(r.Text, "Dear Ann Martin") {
			t.Fatalf("%s", r.Text)
		}
	})
	t.Run("a regional template wins for that region only", func(t *testing.T) {
		if err := tpl.SetOrgTemplate(ctx, "org_test", KindBooked, ChannelSMS, "fr-CA", "", "Québec: {{.When}}"); err != nil {
			t.Fatal(err)
		}
		r, _ := tpl.Render("org_test", testMessage("m1", ChannelSMS, KindBooked, "fr_ca"))
		if !strings.HasPrefix(r.Text, "Québec: lundi 2 mars 2026, de 14:30 à 15:00") {
			t.Fatalf("%s", r.Text)
		}
		r, _ = tpl.Render("org_test", testMessage("m1", ChannelSMS, KindBooked, "fr"))
		if strings.HasPrefix(r.Text, "Québec") {
			t.Fatalf("%s", r.Text)
		}
	})
	t.Run("deleting brings the built-in template back", func(t *testing.T) {
		if err := tpl.DeleteOrgTemplate(ctx, "org_test", KindBooked, ChannelEmail, "en"); err != nil {
			t.Fatal(err)
		}
		r, _ := tpl.Render("org_test", testMessage("m1", ChannelEmail, KindBooked, "en"))
		if !strings.HasPrefix(r.Text, "Hello Ann Martin,") {
			t.Fatalf("%s", r.Text)
		}
	})
}

func TestBadOrgTemplatesAreRefused(t *testing.T) {
	tpl := NewTemplates()
	cases := []struct {
		name                string
		org                 string
		kind                Kind
		channel             Channel
		lang, subject, body string
	}{
		{"a template that does not parse", "org_test", KindBooked, ChannelEmail, "en", "Hi", "Hello {{.CustomerName"},
		{"a field we do not have", "org_test", KindBooked, ChannelEmail, "en", "Hi", "Hello {{.Nickname}}"},
		{"a method that fails", "org_test", KindBooked, ChannelSMS, "en", "", `{{index .Link 99}}`},
		{"an email without a subject", "org_test", KindBooked, ChannelEmail, "en", " ", "Hello"},
		{"an SMS with a subject", "org_test", KindBooked, ChannelSMS, "en", "Hi", "Hello"},
		{"an empty body", "org_test", KindReminder, ChannelSMS, "en", "", "  "},
		{"a body that renders empty", "org_test", KindReminder, ChannelSMS, "en", "", "{{if false}}x{{end}}"},
		{"an unknown kind", "org_test", Kind("moved"), ChannelSMS, "en", "", "Hello"},
		{"an unknown channel", "org_test", KindBooked, Channel("fax"), "en", "", "Hello"},
		{"a language that is not a tag", "org_test", KindBooked, ChannelSMS, "english!", "", "Hello"},
		{"an org id that is not a token", "org.test", KindBooked, ChannelSMS, "en", "", "Hello"},
		{"a body that renders too much", "org_test", KindBooked, ChannelSMS, "en", "", `{{define "a"}}` + strings.Repeat("{{.Link}}", 20) + `{{end}}` + strings.Repeat(`{{template "a" .}}`, 200)},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			err := tpl.SetOrgTemplate(context.Background(), c.org, c.kind, c.channel, c.lang, c.subject, c.body)
			if !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("err = %v", err)
			}
			if _, _, ok := tpl.OrgTemplate(c.org, c.kind, c.channel, c.lang); ok {
				t.Fatal("the template was kept")
			}
		})
	}
}

func TestOrgTemplatesAreSharedThroughKV(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b := openBus(t, t.TempDir())
	defer b.Close()

	// A second node: its own connection to the same server.
	nc, err := nats.Connect("", nats.InProcessServer(b.Embedded()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js2, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	node1, err := OpenTemplates(ctx, b.JS, 1, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer node1.Close()
	node2, err := OpenTemplates(ctx, js2, 1, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer node2.Close()

	if err := node1.SetOrgTemplate(ctx, "org_test", KindReminder, ChannelSMS, "de", "", "Bis gleich: {{.StartTime}}"); err != nil {
		t.Fatal(err)
	}
	render := func(tpl *Templates) string {
		r, err := tpl.Render("org_test", testMessage("m1", ChannelSMS, KindReminder, "de"))
		if err != nil {
			t.Fatal(err)
		}
		return r.Text
	}
	if got := render(node1); got != "Bis gleich: 14:30" {
		t.Fatalf("node 1 renders %q", got)
	}
	eventually(t, 5*time.Second, "node 2 to use the template", func() bool { return render(node2) == "Bis gleich: 14:30" })

	t.Run("a node that starts later loads it before it renders", func(t *testing.T) {
		node3, err := OpenTemplates(ctx, b.JS, 1, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer node3.Close()
		if got := render(node3); got != "Bis gleich: 14:30" {
			t.Fatalf("node 3 renders %q", got)
		}
		if subject, body, ok := node3.OrgTemplate("org_test", KindReminder, ChannelSMS, "de"); !ok || subject != "" || body != "Bis gleich: {{.StartTime}}" {
			t.Fatalf("source: %q %q %v", subject, body, ok)
		}
	})
	t.Run("a delete reaches the other node", func(t *testing.T) {
		if err := node2.DeleteOrgTemplate(ctx, "org_test", KindReminder, ChannelSMS, "de"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "node 1 to drop the template", func() bool {
			return strings.HasPrefix(render(node1), "Example Clinic: Erinnerung")
		})
	})
	t.Run("junk written straight to the bucket is ignored", func(t *testing.T) {
		kv, err := b.JS.KeyValue(ctx, BucketTemplates)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "org_test.reminder.sms.de", []byte(`{"body":"{{.Broken"}`)); err != nil {
			t.Fatal(err)
		}
		// A valid write after it proves the junk was processed (updates arrive in order).
		if _, err := kv.Put(ctx, "org_test.booked.sms.de", []byte(`{"body":"ok {{.StartTime}}"}`)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "node 1 to see the valid write", func() bool {
			_, _, ok := node1.OrgTemplate("org_test", KindBooked, ChannelSMS, "de")
			return ok
		})
		if !strings.HasPrefix(render(node1), "Example Clinic: Erinnerung") {
			t.Fatalf("junk template used: %q", render(node1))
		}
	})
}
