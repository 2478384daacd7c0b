package notify

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type fakeEmail struct{}

func (fakeEmail) Send(context.Context, string, string, Rendered) error { return nil }

type fakeSMS struct{}

func (fakeSMS) Send(context.Context, string, string, string) error { return nil }

func openSettings(t *testing.T, allowPrivate bool) *Settings {
	t.Helper()
	b := openTestBus(t)
	s, err := OpenSettings(t.Context(), b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.AllowPrivate = allowPrivate
	return s
}

func TestOrgSettingsAreCheckedAndKeepTheirSecrets(t *testing.T) {
	ctx := t.Context()
	s := openSettings(t, false)

	t.Run("bad settings are refused, naming the field", func(t *testing.T) {
		cases := []struct {
			o    OrgSettings
			want string
		}{
			{OrgSettings{Email: &EmailSettings{From: "not an address"}}, "email.from"},
			{OrgSettings{Email: &EmailSettings{From: "a@b.example", Username: "u", Password: "p"}}, "without smtp_host"},
			{OrgSettings{Email: &EmailSettings{From: "a@b.example", SMTPHost: "127.0.0.1"}}, "local or private"},
			{OrgSettings{Email: &EmailSettings{From: "a@b.example", SMTPHost: "10.1.2.3"}}, "local or private"},
			{OrgSettings{SMS: &SMSSettings{Provider: "pigeon"}}, "sms.provider"},
			{OrgSettings{SMS: &SMSSettings{Provider: "webhook", URL: "https://203.0.113.9/sms", Secret: "short"}}, "16 bytes"},
			{OrgSettings{SMS: &SMSSettings{Provider: "twilio", AccountSID: "AC1", From: "+15550100"}}, "auth token"},
		}
		for _, c := range cases {
			_, err := s.Put(ctx, "org_a", c.o)
			if !errors.Is(err, ErrInvalidSettings) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: %v, want %q", c.o, err, c.want)
			}
		}
		if o, _ := s.Get(ctx, "org_a"); o != nil {
			t.Fatalf("stored after refusals: %+v", o)
		}
	})

	t.Run("secrets are stored, redacted for showing, and kept when left out", func(t *testing.T) {
		in := OrgSettings{
			Email: &EmailSettings{From: "Clinic <no-reply@clinic.example>", SMTPHost: "203.0.113.5", Username: "clinic", Password: "mail-secret"},
			SMS:   &SMSSettings{Provider: "webhook", URL: "https://203.0.113.9/sms", Secret: "a webhook secret of 32 bytes...."},
		}
		if _, err := s.Put(ctx, "org_a", in); err != nil {
			t.Fatal(err)
		}
		shown := must1(s.Get(ctx, "org_a")).Redacted()
		if shown.Email.Password != "********" || shown.SMS.Secret != "********" || shown.Email.Username != "clinic" {
			t.Fatalf("redacted = %+v %+v", shown.Email, shown.SMS)
		}
		// A new From address without the password keeps the password.
		in.Email = &EmailSettings{From: "Clinic <hello@clinic.example>", SMTPHost: "203.0.113.5", Username: "clinic"}
		in.SMS = &SMSSettings{Provider: "webhook", URL: "https://203.0.113.9/sms"}
		if _, err := s.Put(ctx, "org_a", in); err != nil {
			t.Fatal(err)
		}
		got := must1(s.Get(ctx, "org_a"))
		if got.Email.Password != "mail-secret" || got.Email.From != "Clinic <hello@clinic.example>" ||
			got.SMS.Secret != "a webhook secret of 32 bytes...." {
			t.Fatalf("after the update: %+v %+v", got.Email, got.SMS)
		}
		// A stored secret never follows the settings to another host.
		moved := OrgSettings{SMS: &SMSSettings{Provider: "webhook", URL: "https://198.51.100.7/sms"}}
		if _, err := s.Put(ctx, "org_a", moved); !errors.Is(err, ErrInvalidSettings) {
			t.Fatalf("a new URL without its secret: %v", err)
		}
		movedMail := OrgSettings{Email: &EmailSettings{From: "a@clinic.example", SMTPHost: "198.51.100.8", Username: "clinic"}}
		if _, err := s.Put(ctx, "org_a", movedMail); !errors.Is(err, ErrInvalidSettings) {
			t.Fatalf("a new SMTP host without its password: %v", err)
		}
		if err := s.Delete(ctx, "org_a"); err != nil {
			t.Fatal(err)
		}
		if o, _ := s.Get(ctx, "org_a"); o != nil {
			t.Fatalf("after delete: %+v", o)
		}
	})
}

func must1[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSettingsResolverFallsBackChannelByChannel(t *testing.T) {
	ctx := t.Context()
	s := openSettings(t, true)
	resolve := s.Resolver(StaticProviders(fakeEmail{}, fakeSMS{}, "Node <node@assist.example>"))

	email, sms, from, err := resolve(ctx, "org_none")
	if err != nil || email != (fakeEmail{}) || sms != (fakeSMS{}) || from != "Node <node@assist.example>" {
		t.Fatalf("no settings: %v %v %q %v", email, sms, from, err)
	}

	must1(s.Put(ctx, "org_from", OrgSettings{Email: &EmailSettings{From: "Clinic <c@clinic.example>"}}))
	email, sms, from, _ = resolve(ctx, "org_from")
	if email != (fakeEmail{}) || sms != (fakeSMS{}) || from != "Clinic <c@clinic.example>" {
		t.Fatalf("own From only: %v %v %q", email, sms, from)
	}

	must1(s.Put(ctx, "org_own", OrgSettings{
		Email: &EmailSettings{From: "Shop <s@shop.example>", SMTPHost: "127.0.0.1", SMTPPort: 2525, StartTLS: StartTLSNone},
		SMS:   &SMSSettings{Provider: "webhook", URL: "http://127.0.0.1:1/sms", Secret: "0123456789abcdef"}}))
	email, sms, from, _ = resolve(ctx, "org_own")
	if _, ok := email.(*SMTPSender); !ok || from != "Shop <s@shop.example>" {
		t.Fatalf("own SMTP: %T %q", email, from)
	}
	if _, ok := sms.(*WebhookSender); !ok {
		t.Fatalf("own SMS: %T", sms)
	}
}

func TestOrganisationsOwnSMSProviderSendsItsTexts(t *testing.T) {
	ctx := t.Context()
	b := openTestBus(t)
	settings, err := OpenSettings(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	settings.AllowPrivate = true
	nodes := startWebhook(t)
	own := startWebhook(t, 503) // fails once: the retry goes to the organisation's provider too
	n := newNotifier(t, b.JS, Config{Providers: settings.Resolver(StaticProviders(nil, nodes.webhook(t, webhookSecret), ""))})
	running(t, n)
	if _, err := settings.Put(ctx, "org_test", OrgSettings{SMS: &SMSSettings{Provider: "webhook", URL: own.URL + "/sms", Secret: string(webhookSecret)}}); err != nil {
		t.Fatal(err)
	}

	m := testMessage("apt_1.booked.sms.1", ChannelSMS, KindBooked, "en")
	enqueue(t, n, m)
	if st := waitState(t, n, m, StateSent); st.Attempts != 2 {
		t.Fatalf("status %+v", st)
	}
	got, _ := own.seen()
	if len(got) != 2 || got[1].ID != m.ID || !strings.Contains(got[1].Body, m.Data.Link) {
		t.Fatalf("the organisation's provider saw %+v", got)
	}
	if got, _ := nodes.seen(); len(got) != 0 {
		t.Fatalf("the node's provider was used: %+v", got)
	}

	// Another organisation, without settings, uses the node's provider.
	other := testMessage("apt_2.booked.sms.1", ChannelSMS, KindBooked, "en")
	other.OrgID, other.AppointmentID = "org_other", "apt_2"
	enqueue(t, n, other)
	waitState(t, n, other, StateSent)
	if got, _ := nodes.seen(); len(got) != 1 || got[0].ID != other.ID {
		t.Fatalf("the node's provider saw %+v", got)
	}
}
