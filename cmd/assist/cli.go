package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/client"
)

// The admin subcommands talk to a running node through its REST API (package signaling/client),
// exactly as any integrator would.

const defaultURL = "http://127.0.0.1:8080"

// command is one subcommand, such as "sessions list".
type command struct {
	group, name string
	args        string // the positional arguments, for the usage line
	summary     string
	// flags adds the command's own flags; run gets the positional arguments.
	flags func(fs *flag.FlagSet) func(ctx context.Context, cl *cli, args []string) error
}

// commands is the table of subcommands.
func commands() []command {
	return []command{
		{"sessions", "list", "", "list the organisation's sessions, newest first", sessionsList},
		{"sessions", "create", "", "create a session and print its links", sessionsCreate},
		{"sessions", "end", "ID", "end a session for everyone in it", sessionsEnd},
		{"api-keys", "create", "", "issue an API key (shown once)", apiKeysCreate},
		{"api-keys", "list", "", "list the organisation's API keys", apiKeysList},
		{"api-keys", "revoke", "ID", "revoke an API key", apiKeysRevoke},
		{"specialists", "create", "", "add a specialist who signs in to the console", specialistsCreate},
		{"specialists", "list", "", "list the organisation's specialists", specialistsList},
		{"orgs", "create", "", "create an organisation (platform administrators)", orgsCreate},
		{"orgs", "list", "", "list organisations (platform administrators)", orgsList},
	}
}

func isCommandGroup(word string) bool {
	for _, c := range commands() {
		if c.group == word {
			return true
		}
	}
	return false
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage:
  assist [serve] [flags]        run an Assist node (assist serve -help lists its settings)
  assist <command> [flags]      manage a running node through its API
  assist help                   show this

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s %s %s\t%s\n", c.group, c.name, c.args, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, `
Every command takes:
  -url URL        the node's address (env ASSIST_URL, default %s)
  -api-key KEY    an API key, ak_... (env ASSIST_API_KEY)
  -json           print JSON instead of a table
Run "assist <command> -help" for a command's own flags.
`, defaultURL)
}

// cli is what every command shares: where its output goes and the client.
type cli struct {
	out     io.Writer
	errOut  io.Writer
	json    bool
	client  *client.Client
	baseURL string
}

// runCommand runs "assist <group> <name> ...".
func runCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	group := args[0]
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		return fmt.Errorf("%s: say what to do: %s (see assist help)", group, strings.Join(verbs(group), ", "))
	}
	var cmd *command
	for _, c := range commands() {
		if c.group == group && c.name == args[1] {
			cmd = &c
		}
	}
	if cmd == nil {
		return fmt.Errorf("%s: unknown command %q; try %s (see assist help)", group, args[1], strings.Join(verbs(group), ", "))
	}
	fs := flag.NewFlagSet("assist "+group+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := getenv("ASSIST_URL")
	if url == "" {
		url = defaultURL
	}
	fs.StringVar(&url, "url", url, "the node's address (env ASSIST_URL)")
	key := fs.String("api-key", getenv("ASSIST_API_KEY"), "an API key, ak_... (env ASSIST_API_KEY)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: assist %s %s [flags] %s\n\n%s.\n\n", group, cmd.name, cmd.args, capitalise(cmd.summary))
		fs.PrintDefaults()
	}
	run := cmd.flags(fs)
	positional, err := parseInterleaved(fs, args[2:])
	if err != nil {
		return err
	}
	want := len(strings.Fields(cmd.args))
	if len(positional) != want {
		fs.Usage()
		if want == 0 {
			return fmt.Errorf("%s %s: unexpected argument %q", group, cmd.name, positional[0])
		}
		return fmt.Errorf("%s %s: want %s", group, cmd.name, cmd.args)
	}
	c, err := client.New(url, client.WithAPIKey(*key), client.WithUserAgent("assist-cli"),
		client.WithHTTPClient(&http.Client{Timeout: 60 * time.Second}))
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	cl := &cli{out: stdout, errOut: stderr, json: *asJSON, client: c, baseURL: c.BaseURL()}
	return cl.explain(run(ctx, cl, positional))
}

func verbs(group string) []string {
	var out []string
	for _, c := range commands() {
		if c.group == group {
			out = append(out, c.name)
		}
	}
	return out
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseInterleaved parses flags that come before, between or after positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// routeMissing marks a 404 that means the node does not have the route at all.
type routeMissing struct {
	what string // "the API-key admin API"
	err  error
}

func (e *routeMissing) Error() string { return e.what }
func (e *routeMissing) Unwrap() error { return e.err }

// explain turns API errors into messages that say what to do.
func (cl *cli) explain(err error) error {
	var missing *routeMissing
	if errors.As(err, &missing) {
		return fmt.Errorf("the node at %s does not offer %s (it answered 404 Not Found): it needs a newer Assist version", cl.baseURL, missing.what)
	}
	var netErr *neturl.Error
	if errors.As(err, &netErr) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("cannot reach the node at %s (is it running? set -url or $ASSIST_URL): %w", cl.baseURL, netErr.Err)
	}
	var p *client.Problem
	if errors.As(err, &p) {
		switch p.Status {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w (give an API key with -api-key or $ASSIST_API_KEY)", err)
		case http.StatusForbidden:
			return fmt.Errorf("%w (this API key may not do that)", err)
		case http.StatusTooManyRequests:
			if p.RetryAfter > 0 {
				return fmt.Errorf("%w (try again in %s)", err, p.RetryAfter)
			}
		}
	}
	return err
}

// admin wraps an error from an admin route: a 404 from the catch-all means the route is missing.
func admin(what string, err error, collection bool) error {
	var p *client.Problem
	if errors.As(err, &p) && p.Status == http.StatusNotFound && (collection || p.Detail == "no such API route") {
		return &routeMissing{what: what, err: err}
	}
	return err
}

func (cl *cli) printJSON(v any) error {
	enc := json.NewEncoder(cl.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows under a header, aligned.
func (cl *cli) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(cl.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields prints one resource as "name: value" lines.
func (cl *cli) fields(pairs ...string) error {
	tw := tabwriter.NewWriter(cl.out, 0, 0, 1, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], pairs[i+1])
		}
	}
	return tw.Flush()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// paging are the flags of list commands.
type paging struct {
	limit int
	after string
	all   bool
}

func pagingFlags(fs *flag.FlagSet) *paging {
	p := &paging{}
	fs.IntVar(&p.limit, "limit", 20, "page size (1-100)")
	fs.StringVar(&p.after, "after", "", "the cursor a previous page printed")
	fs.BoolVar(&p.all, "all", false, "follow the cursor to the end")
	return p
}

// list fetches one page, or every page with -all, and says how to get the next.
func list[T any](ctx context.Context, cl *cli, p *paging, fetch func(context.Context, client.PageParams) ([]T, string, bool, error),
	rows func(T) []string, header ...string) error {
	var items []T
	params := client.PageParams{Limit: p.limit, StartingAfter: p.after}
	next, more := "", false
	for {
		page, n, m, err := fetch(ctx, params)
		if err != nil {
			return err
		}
		items, next, more = append(items, page...), n, m
		if !p.all || !more || next == "" {
			break
		}
		params.StartingAfter = next
	}
	if items == nil {
		items = []T{}
	}
	if cl.json {
		out := struct {
			Data       []T    `json:"data"`
			HasMore    bool   `json:"has_more"`
			NextCursor string `json:"next_cursor,omitempty"`
		}{items, more, next}
		if !more {
			out.NextCursor = ""
		}
		return cl.printJSON(out)
	}
	var table [][]string
	for _, it := range items {
		table = append(table, rows(it))
	}
	if err := cl.table(header, table); err != nil {
		return err
	}
	if more && next != "" {
		fmt.Fprintf(cl.errOut, "More: add -after %s (or -all).\n", next)
	}
	return nil
}

// ---- sessions ----

func sessionsList(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	p := pagingFlags(fs)
	return func(ctx context.Context, cl *cli, _ []string) error {
		return list(ctx, cl, p, func(ctx context.Context, pp client.PageParams) ([]api.Session, string, bool, error) {
			page, err := cl.client.ListSessions(ctx, pp)
			return page.Data, page.NextCursor, page.HasMore, err
		}, func(s api.Session) []string {
			ended := "-"
			if s.EndedAt != nil {
				ended = when(*s.EndedAt)
			}
			return []string{s.ID, s.State, when(s.CreatedAt), ended, strconv.Itoa(len(s.Participants))}
		}, "ID", "STATE", "CREATED", "ENDED", "PARTICIPANTS")
	}
}

func sessionsCreate(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	name := fs.String("customer-name", "", "the customer's name, if known")
	idem := fs.String("idempotency-key", "", "send this Idempotency-Key, so a retry does not create a second session")
	return func(ctx context.Context, cl *cli, _ []string) error {
		s, err := cl.client.CreateSession(ctx, api.CreateSession{CustomerName: *name}, client.IdempotencyKey(*idem))
		if err != nil {
			return err
		}
		if cl.json {
			return cl.printJSON(s)
		}
		return cl.fields("id", s.ID, "state", s.State, "created", when(s.CreatedAt),
			"customer link", s.CustomerURL, "specialist link", s.SpecialistURL)
	}
}

func sessionsEnd(*flag.FlagSet) func(context.Context, *cli, []string) error {
	return func(ctx context.Context, cl *cli, args []string) error {
		s, err := cl.client.EndSession(ctx, args[0])
		if err != nil {
			return err
		}
		if cl.json {
			return cl.printJSON(s)
		}
		ended := "-"
		if s.EndedAt != nil {
			ended = when(*s.EndedAt)
		}
		return cl.fields("id", s.ID, "state", s.State, "ended", ended)
	}
}

// ---- API keys ----

const apiKeysAPI = "the API-key admin API (/v1/api-keys)"

func apiKeysCreate(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	name := fs.String("name", "", "what the key is for (required)")
	scopes := fs.String("scopes", "", "comma-separated: sessions, sessions.delete, appointments, webhooks, audit, admin, platform (default: everything in the organisation)")
	org := fs.String("org", "", "the organisation (platform administrators; default: the caller's)")
	idem := fs.String("idempotency-key", "", "send this Idempotency-Key")
	return func(ctx context.Context, cl *cli, _ []string) error {
		if *name == "" {
			return errors.New("api-keys create: -name is required")
		}
		var scopeList []string
		for sc := range strings.SplitSeq(*scopes, ",") {
			if sc = strings.TrimSpace(sc); sc != "" {
				scopeList = append(scopeList, sc)
			}
		}
		k, err := cl.client.CreateAPIKey(ctx, client.CreateAPIKey{Name: *name, Scopes: scopeList, OrganizationID: *org}, client.IdempotencyKey(*idem))
		if err != nil {
			return admin(apiKeysAPI, err, true)
		}
		if cl.json {
			return cl.printJSON(k)
		}
		if err := cl.fields("id", k.ID, "name", k.Name, "organisation", k.OrganizationID, "scopes", strings.Join(k.Scopes, ","),
			"created", when(k.CreatedAt), "key", k.Key); err != nil {
			return err
		}
		fmt.Fprintln(cl.errOut, "The key is shown only now: keep it.")
		return nil
	}
}

func apiKeysList(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	p := pagingFlags(fs)
	return func(ctx context.Context, cl *cli, _ []string) error {
		err := list(ctx, cl, p, func(ctx context.Context, pp client.PageParams) ([]client.APIKey, string, bool, error) {
			page, err := cl.client.ListAPIKeys(ctx, pp)
			return page.Data, page.NextCursor, page.HasMore, err
		}, func(k client.APIKey) []string {
			return []string{k.ID, k.Name, k.OrganizationID, strings.Join(k.Scopes, ","), when(k.CreatedAt)}
		}, "ID", "NAME", "ORGANISATION", "SCOPES", "CREATED")
		return admin(apiKeysAPI, err, true)
	}
}

func apiKeysRevoke(*flag.FlagSet) func(context.Context, *cli, []string) error {
	return func(ctx context.Context, cl *cli, args []string) error {
		if err := cl.client.RevokeAPIKey(ctx, args[0]); err != nil {
			return admin(apiKeysAPI, err, false)
		}
		if cl.json {
			return cl.printJSON(struct {
				ID      string `json:"id"`
				Revoked bool   `json:"revoked"`
			}{args[0], true})
		}
		fmt.Fprintf(cl.out, "revoked %s\n", args[0])
		return nil
	}
}

// ---- specialists ----

const specialistsAPI = "the specialist admin API (/v1/specialists)"

func specialistsCreate(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	email := fs.String("email", "", "the address they sign in with (required)")
	name := fs.String("name", "", "their name as customers see it (required)")
	password := fs.String("password", "", "their password (default: the node chooses one and prints it once)")
	role := fs.String("role", "", "specialist (default), supervisor or admin")
	org := fs.String("org", "", "the organisation (platform administrators; default: the caller's)")
	idem := fs.String("idempotency-key", "", "send this Idempotency-Key")
	return func(ctx context.Context, cl *cli, _ []string) error {
		if *email == "" || *name == "" {
			return errors.New("specialists create: -email and -name are required")
		}
		sp, err := cl.client.CreateSpecialist(ctx, client.CreateSpecialist{Email: *email, Name: *name,
			Password: *password, Role: *role, OrganizationID: *org}, client.IdempotencyKey(*idem))
		if err != nil {
			return admin(specialistsAPI, err, true)
		}
		if cl.json {
			return cl.printJSON(sp)
		}
		if err := cl.fields("id", sp.ID, "email", sp.Email, "name", sp.Name, "role", sp.Role, "organisation", sp.OrganizationID,
			"created", when(sp.CreatedAt), "password", sp.Password); err != nil {
			return err
		}
		if sp.Password != "" {
			fmt.Fprintln(cl.errOut, "The password is shown only now: pass it on safely.")
		}
		return nil
	}
}

func specialistsList(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	p := pagingFlags(fs)
	return func(ctx context.Context, cl *cli, _ []string) error {
		err := list(ctx, cl, p, func(ctx context.Context, pp client.PageParams) ([]client.Specialist, string, bool, error) {
			page, err := cl.client.ListSpecialists(ctx, pp)
			return page.Data, page.NextCursor, page.HasMore, err
		}, func(s client.Specialist) []string {
			return []string{s.ID, s.Email, s.Name, s.Role, when(s.CreatedAt)}
		}, "ID", "EMAIL", "NAME", "ROLE", "CREATED")
		return admin(specialistsAPI, err, true)
	}
}

// ---- organisations ----

const orgsAPI = "the organisation admin API (/v1/orgs)"

func orgsCreate(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	name := fs.String("name", "", "the organisation's name (required)")
	region := fs.String("storage-region", "", "keep its recordings, snapshots and files in this storage region of the node (default: the default store)")
	idem := fs.String("idempotency-key", "", "send this Idempotency-Key")
	return func(ctx context.Context, cl *cli, _ []string) error {
		if *name == "" {
			return errors.New("orgs create: -name is required")
		}
		o, err := cl.client.CreateOrganization(ctx, client.CreateOrganization{Name: *name, StorageRegion: *region}, client.IdempotencyKey(*idem))
		if err != nil {
			return admin(orgsAPI, err, true)
		}
		if cl.json {
			return cl.printJSON(o)
		}
		return cl.fields("id", o.ID, "name", o.Name, "storage region", o.StorageRegion, "created", when(o.CreatedAt))
	}
}

func orgsList(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	p := pagingFlags(fs)
	return func(ctx context.Context, cl *cli, _ []string) error {
		err := list(ctx, cl, p, func(ctx context.Context, pp client.PageParams) ([]client.Organization, string, bool, error) {
			page, err := cl.client.ListOrganizations(ctx, pp)
			return page.Data, page.NextCursor, page.HasMore, err
		}, func(o client.Organization) []string {
			return []string{o.ID, o.Name, when(o.CreatedAt)}
		}, "ID", "NAME", "CREATED")
		return admin(orgsAPI, err, true)
	}
}
