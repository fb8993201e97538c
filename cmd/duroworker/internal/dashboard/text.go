package dashboard

import (
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/duroworker/duroworker/cmd/duroworker/internal/textsafe"
)

// pathID escapes an id for one path segment. "." and ".." are escaped
// too: browsers would resolve them as dot segments.
func pathID(id string) string {
	if id == "." || id == ".." {
		return strings.ReplaceAll(id, ".", "%2E")
	}
	return url.PathEscape(id)
}

// maxShown bounds the payload text rendered in a page.
const maxShown = 64 << 10

func (h *Handler) parseTemplates() error {
	funcs := template.FuncMap{
		"vis": textsafe.Escape,
		"payload": func(s string) string {
			if len(s) > maxShown {
				return textsafe.EscapeKeepLines(s[:maxShown]) + fmt.Sprintf("\n… (%d more bytes: see the JSON API)", len(s)-maxShown)
			}
			return textsafe.EscapeKeepLines(s)
		},
		"pathid": pathID,
		"q":      url.QueryEscape,
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05.000Z")
		},
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return time.Since(t).Round(time.Second).String()
		},
		"since": func(start, t time.Time) string {
			if start.IsZero() || t.IsZero() {
				return ""
			}
			return "+" + t.Sub(start).Round(time.Millisecond).String()
		},
		"lower": strings.ToLower,
		"deref": func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		},
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict: odd number of arguments")
			}
			m := map[string]any{}
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"add": func(a, b int) int { return a + b },
	}
	layout, err := fs.ReadFile(assets, "assets/layout.html")
	if err != nil {
		return err
	}
	base, err := template.New("layout").Funcs(funcs).Parse(string(layout))
	if err != nil {
		return fmt.Errorf("dashboard: layout: %w", err)
	}
	h.pages = map[string]*template.Template{}
	for _, name := range []string{"overview", "instances", "instance", "fleet", "queues", "dlq", "deadletter", "sessions", "confirm", "done", "error"} {
		text, err := fs.ReadFile(assets, "assets/"+name+".html")
		if err != nil {
			return err
		}
		t, err := template.Must(base.Clone()).Parse(string(text))
		if err != nil {
			return fmt.Errorf("dashboard: %s: %w", name, err)
		}
		h.pages[name] = t
	}
	return nil
}
