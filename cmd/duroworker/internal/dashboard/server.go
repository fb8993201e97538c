package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/queue"
)

//go:embed assets
var assets embed.FS

// Namespace is one key namespace shown by the dashboard.
type Namespace struct {
	// Prefix is the namespace's key prefix; it names the namespace in URLs
	// (?ns=PREFIX) and must be unique within a Config.
	Prefix string
	// Client reads (and, with AllowActions, changes) the namespace.
	Client *client.Client
	// Store, when set, lets the sessions page list the sessions a worker
	// node holds (the client API has no session listing); without it the
	// page shows per-node counts only.
	Store *queue.Store
}

// Config configures a dashboard Handler.
type Config struct {
	// Namespaces are shown in this order; the first is the default.
	Namespaces []Namespace
	// AllowActions enables start, raise event, cancel, delete and the
	// dead-letter requeue and drop. Off, every action is refused with 403.
	AllowActions bool
	// Token, when set, is required on every request: as
	// "Authorization: Bearer TOKEN", or as the password of basic auth
	// (any user name), which lets a browser log in.
	Token string
	// User and Password, when set, are required on every request as basic
	// auth.
	User, Password string
	// SampleEvery is how often the live numbers are sampled; if zero, 2s.
	SampleEvery time.Duration
	// Logger receives errors of the sampler; nil discards them.
	Logger *slog.Logger
}

// HasAuth reports whether c requires credentials.
func (c Config) HasAuth() bool { return c.Token != "" || c.User != "" || c.Password != "" }

// Handler serves the dashboard. Close stops its sampler.
type Handler struct {
	cfg    Config
	ns     map[string]*nsState
	order  []string
	mux    *http.ServeMux
	pages  map[string]*template.Template
	static http.Handler
	stop   context.CancelFunc
	done   chan struct{}
	logger *slog.Logger
}

// nsState is a namespace and its live samples.
type nsState struct {
	Namespace
	mu      sync.Mutex
	samples []sample
}

// New builds the handler and starts sampling the live numbers.
func New(cfg Config) (*Handler, error) {
	if len(cfg.Namespaces) == 0 {
		return nil, errors.New("dashboard: no namespace")
	}
	if (cfg.User == "") != (cfg.Password == "") {
		return nil, errors.New("dashboard: basic auth needs both a user and a password")
	}
	h := &Handler{cfg: cfg, ns: map[string]*nsState{}, logger: cfg.Logger}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	for _, n := range cfg.Namespaces {
		if n.Client == nil || n.Prefix == "" {
			return nil, fmt.Errorf("dashboard: namespace %q has no client or no prefix", n.Prefix)
		}
		if h.ns[n.Prefix] != nil {
			return nil, fmt.Errorf("dashboard: namespace %q given twice", n.Prefix)
		}
		h.ns[n.Prefix] = &nsState{Namespace: n}
		h.order = append(h.order, n.Prefix)
	}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	h.static = http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	h.routes()
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan struct{})
	every := cfg.SampleEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	go h.sampleLoop(ctx, every)
	return h, nil
}

// Close stops the sampler.
func (h *Handler) Close() error {
	h.stop()
	<-h.done
	return nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	page := func(pattern, name string, fn func(*http.Request, *nsState) (any, error)) {
		m.HandleFunc("GET "+pattern, func(w http.ResponseWriter, r *http.Request) { h.servePage(w, r, name, fn, false) })
		m.HandleFunc("GET /api"+pattern, func(w http.ResponseWriter, r *http.Request) { h.servePage(w, r, name, fn, true) })
	}
	page("/{$}", "overview", h.overview)
	m.HandleFunc("GET /api/overview", func(w http.ResponseWriter, r *http.Request) { h.servePage(w, r, "overview", h.overview, true) })
	page("/instances", "instances", h.instances)
	page("/instances/{id...}", "instance", h.instance)
	page("/fleet", "fleet", h.fleet)
	page("/queues", "queues", h.queues)
	page("/dlq", "dlq", h.dlq)
	page("/dlq/{id}", "deadletter", h.deadLetter)
	page("/sessions", "sessions", h.sessions)
	m.HandleFunc("GET /api/live", h.live)
	m.Handle("GET /static/", h.static)
	m.HandleFunc("POST /actions/{action}", h.action)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "no such page", strings.HasPrefix(r.URL.Path, "/api/"))
	})
	h.mux = m
}

// ServeHTTP sets the security headers, authenticates and dispatches.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if !h.cfg.HasAuth() && !LoopbackHost(r.Host) {
		// Without credentials only a loopback name may reach the
		// dashboard: a page whose own name was rebound to 127.0.0.1 (DNS
		// rebinding) is same-origin to the browser, and would otherwise
		// read the pages and post actions with their CSRF tokens.
		http.Error(w, "this dashboard has no credentials and answers only on a loopback address (127.0.0.1, ::1, localhost)", http.StatusMisdirectedRequest)
		return
	}
	if !h.authorized(r) {
		hd.Set("WWW-Authenticate", `Basic realm="duroworker dashboard", charset="UTF-8"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized checks the credentials of r against the config.
func (h *Handler) authorized(r *http.Request) bool {
	if !h.cfg.HasAuth() {
		return true
	}
	auth := r.Header.Get("Authorization")
	if h.cfg.Token != "" {
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && equal(tok, h.cfg.Token) {
			return true
		}
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	if h.cfg.Token != "" && equal(pass, h.cfg.Token) {
		return true
	}
	return h.cfg.User != "" && equal(user, h.cfg.User) && equal(pass, h.cfg.Password)
}

// LoopbackHost reports whether hostport (a host, or host:port as in a
// Host header or a listen address) names only the loopback interface:
// "localhost" or a loopback IP.
func LoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// equal compares secrets in constant time (of their hashes).
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// namespace returns the namespace named by ?ns=, the first by default.
func (h *Handler) namespace(r *http.Request) (*nsState, error) {
	p := r.URL.Query().Get("ns")
	if p == "" {
		return h.ns[h.order[0]], nil
	}
	n := h.ns[p]
	if n == nil {
		return nil, fmt.Errorf("no namespace %q", p)
	}
	return n, nil
}

// statusOf is the HTTP status of err: an httpError's own, 404 for what
// does not exist, 400 for invalid input, otherwise fallback.
func statusOf(err error, fallback int) int {
	var he httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, client.ErrInstanceNotFound), errors.Is(err, client.ErrDeadLetterNotFound), errors.Is(err, client.ErrExecutionNotFound):
		return http.StatusNotFound
	case errors.Is(err, client.ErrInvalidInput):
		return http.StatusBadRequest
	}
	return fallback
}

// view is what every HTML page template receives.
type view struct {
	Title      string
	Page       string
	NS         string
	Namespaces []string
	Actions    bool
	CSRF       string
	Data       any
}

// servePage renders one page as HTML or, under /api, as JSON.
func (h *Handler) servePage(w http.ResponseWriter, r *http.Request, name string, fn func(*http.Request, *nsState) (any, error), api bool) {
	ns, err := h.namespace(r)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, err.Error(), api)
		return
	}
	data, err := fn(r, ns)
	if err != nil {
		h.fail(w, r, statusOf(err, http.StatusInternalServerError), err.Error(), api)
		return
	}
	if api {
		writeJSON(w, http.StatusOK, data)
		return
	}
	h.render(w, r, http.StatusOK, name, data)
}

// httpError is an error with its HTTP status.
type httpError struct {
	status int
	msg    string
}

func (e httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// render executes a page template inside the layout.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t := h.pages[name]
	ns, _ := h.namespace(r)
	if ns == nil {
		ns = h.ns[h.order[0]]
	}
	v := view{Page: name, NS: ns.Prefix, Namespaces: h.order, Actions: h.cfg.AllowActions, CSRF: h.csrfToken(w, r), Data: data}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		h.logger.Error("dashboard: rendering", "page", name, "err", err)
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// errorData is the data of the error page and of JSON errors.
type errorData struct {
	Status int    `json:"status"`
	Error  string `json:"error"`
}

// fail answers an error as JSON or as an HTML page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string, api bool) {
	if api {
		writeJSON(w, status, errorData{Status: status, Error: msg})
		return
	}
	h.render(w, r, status, "error", errorData{Status: status, Error: msg})
}

// writeJSON writes v as JSON; encoding/json escapes <, > and & so that
// no payload can be read as HTML even by a sniffing client.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// csrfCookie is the cookie the CSRF token is bound to.
const csrfCookie = "duroworker_csrf"

// csrfToken returns the CSRF token of the browser, setting the cookie when
// it has none.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return tok
}

// checkCSRF refuses a POST whose form token does not match its cookie, or
// that comes from another origin.
func checkCSRF(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-site request (Sec-Fetch-Site: %s)", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return errors.New("request from another origin")
		}
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" {
		return errors.New("no CSRF cookie: reload the page and try again")
	}
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		return errors.New("CSRF token missing or wrong: reload the page and try again")
	}
	return nil
}
