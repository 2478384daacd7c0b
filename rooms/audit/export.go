package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

const exportPageSize = maxPageSize

// ExportNDJSON writes the entries matching the filter, one JSON object per line, in the order
// they were logged. Filter.After starts after a cursor; Filter.Limit, when set, caps the number
// of entries written (not a page size).
func (t *Trail) ExportNDJSON(ctx context.Context, w io.Writer, f Filter) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return t.each(ctx, f, func(ev *Event) error { return enc.Encode(ev) })
}

// csvHeader names the CSV columns.
var csvHeader = [...]string{
	"id", "time", "org_id", "actor_kind", "actor_id", "actor_name", "action", "session_id",
	"target", "remote_addr", "user_agent", "detail",
}

// ExportCSV writes the entries matching the filter as CSV with a header row, one row per
// entry, as ExportNDJSON does. Cells that a spreadsheet would take for a formula (starting
// with = + - @, tab or carriage return) get a leading apostrophe, so an actor name or detail
// cannot run a formula on the machine of whoever opens the export.
func (t *Trail) ExportCSV(ctx context.Context, w io.Writer, f Filter) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader[:]); err != nil {
		return err
	}
	err := t.each(ctx, f, func(ev *Event) error {
		return cw.Write([]string{
			safeCell(ev.ID), ev.Time.UTC().Format(time.RFC3339Nano), safeCell(ev.OrgID),
			safeCell(string(ev.Actor.Kind)), safeCell(ev.Actor.ID), safeCell(ev.Actor.Name),
			safeCell(ev.Action), safeCell(ev.SessionID), safeCell(ev.Target),
			safeCell(ev.RemoteAddr), safeCell(ev.UserAgent), safeCell(ev.Detail),
		})
	})
	cw.Flush()
	if err != nil {
		return err
	}
	return cw.Error()
}

// safeCell defuses spreadsheet formulas (CSV injection).
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// each calls fn for every entry matching f, page by page.
func (t *Trail) each(ctx context.Context, f Filter, fn func(*Event) error) error {
	total := f.Limit
	if total < 0 {
		return fmt.Errorf("%w: negative limit", ErrInvalidFilter)
	}
	written := 0
	for {
		f.Limit = exportPageSize
		if total > 0 {
			f.Limit = min(exportPageSize, total-written)
		}
		page, err := t.Query(ctx, f)
		if err != nil {
			return err
		}
		for i := range page.Events {
			if err := fn(&page.Events[i]); err != nil {
				return err
			}
		}
		written += len(page.Events)
		if page.Next == "" || total > 0 && written >= total {
			return nil
		}
		f.After = page.Next
	}
}
