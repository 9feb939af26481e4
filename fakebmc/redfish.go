package fakebmc

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// A simulated BMC's Redfish service (DMTF DSP0266), served over HTTPS on
// TCP at the same port number as the BMC's IPMI (UDP) port and backed by
// the same Machine: a power off through Redfish is what ipmitool's
// "chassis power status" sees next, and a boot override set through one
// protocol is read back through the other.
//
// It serves the resources an out-of-band manager uses, one handler per
// resource (redfish_sessions.go, redfish_systems.go, redfish_tasks.go):
// the service root, SessionService and its Sessions, the Systems
// collection with one ComputerSystem ("1"), its Reset action and
// ActionInfo, a PATCH of its Boot object, and task monitors. Errors are
// Redfish error responses with @Message.ExtendedInfo from the Base
// message registry. RedfishQuirks reproduce the deviations of real
// services that clients must cope with.

// RedfishQuirk is one deviation of a real Redfish service.
type RedfishQuirk string

// The Redfish quirks fakebmc reproduces.
const (
	// RedfishETagRequired: PATCH without If-Match (or with a stale ETag)
	// is answered 412 Precondition Failed, as HPE iLO 5 and recent
	// OpenBMC do.
	RedfishETagRequired RedfishQuirk = "etag-required"
	// RedfishNoContinuous: BootSourceOverrideEnabled accepts Once and
	// Disabled only (some Supermicro and Lenovo firmware); Continuous is a
	// 400 PropertyValueNotInList.
	RedfishNoContinuous RedfishQuirk = "no-continuous"
	// RedfishNoPowerCycle: the Reset action does not offer PowerCycle
	// (iDRAC before 4.x, iLO 4).
	RedfishNoPowerCycle RedfishQuirk = "no-powercycle"
	// RedfishSessionsOnly: HTTP Basic is refused; only session tokens
	// are accepted (a hardening option on iDRAC and iLO).
	RedfishSessionsOnly RedfishQuirk = "sessions-only"
	// RedfishNoSessions: the service offers no SessionService: HTTP Basic
	// only (minimal embedded implementations).
	RedfishNoSessions RedfishQuirk = "no-sessions"
	// RedfishTask202: Reset answers 202 Accepted with a task monitor and
	// acts only when the task runs, RedfishConfig.TaskDuration later (iLO,
	// XCC for some actions).
	RedfishTask202 RedfishQuirk = "task-202"
	// RedfishSlowPowerOn: after On, PowerState reads PoweringOn for
	// RedfishConfig.SlowPowerOn before the machine is on (servers whose
	// power-on sequence takes seconds).
	RedfishSlowPowerOn RedfishQuirk = "slow-poweron"
)

var redfishQuirkHelp = map[RedfishQuirk]string{
	RedfishETagRequired: "PATCH without a current If-Match is answered 412 Precondition Failed (HPE iLO 5, recent OpenBMC)",
	RedfishNoContinuous: "boot override Once (and Disabled) only: Continuous is a 400 PropertyValueNotInList",
	RedfishNoPowerCycle: "ComputerSystem.Reset does not offer PowerCycle",
	RedfishSessionsOnly: "HTTP Basic authentication is refused; sessions (X-Auth-Token) only",
	RedfishNoSessions:   "no SessionService: HTTP Basic authentication only",
	RedfishTask202:      "Reset answers 202 Accepted with a task monitor; the action happens when the task runs",
	RedfishSlowPowerOn:  "after On, PowerState reads PoweringOn for a while before the machine is on",
}

// KnownRedfishQuirks lists every Redfish quirk, sorted.
func KnownRedfishQuirks() []RedfishQuirk {
	out := make([]RedfishQuirk, 0, len(redfishQuirkHelp))
	for q := range redfishQuirkHelp {
		out = append(out, q)
	}
	slices.Sort(out)
	return out
}

// RedfishQuirkHelp is the one-line description of q ("" if unknown).
func RedfishQuirkHelp(q RedfishQuirk) string { return redfishQuirkHelp[q] }

// RedfishQuirks is a set of Redfish quirks.
type RedfishQuirks map[RedfishQuirk]bool

// Has reports whether q is in the set.
func (qs RedfishQuirks) Has(q RedfishQuirk) bool { return qs[q] }

// String lists the set, sorted, comma-separated.
func (qs RedfishQuirks) String() string {
	var names []string
	for q, on := range qs {
		if on {
			names = append(names, string(q))
		}
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// ParseRedfishQuirks parses a comma-separated list of Redfish quirk names,
// reporting every unknown name at once.
func ParseRedfishQuirks(list string) (RedfishQuirks, error) {
	qs := RedfishQuirks{}
	var unknown []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if _, ok := redfishQuirkHelp[RedfishQuirk(name)]; !ok {
			unknown = append(unknown, fmt.Sprintf("%q", name))
			continue
		}
		qs[RedfishQuirk(name)] = true
	}
	if len(unknown) > 0 {
		var known []string
		for _, q := range KnownRedfishQuirks() {
			known = append(known, string(q))
		}
		return nil, fmt.Errorf("unknown Redfish quirk %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	if qs.Has(RedfishSessionsOnly) && qs.Has(RedfishNoSessions) {
		return nil, fmt.Errorf("Redfish quirks %s and %s leave no way to authenticate", RedfishSessionsOnly, RedfishNoSessions)
	}
	return qs, nil
}

// RedfishConfig turns on a BMC's Redfish service. Zero fields take the
// defaults noted.
type RedfishConfig struct {
	Quirks RedfishQuirks
	// SessionTimeout ends sessions unused for this long (default 30
	// minutes, the Redfish SessionService default).
	SessionTimeout time.Duration
	// TaskDuration is how long a task-202 action takes (default 300 ms).
	TaskDuration time.Duration
	// SlowPowerOn is how long slow-poweron reads PoweringOn (default 2 s).
	SlowPowerOn time.Duration
	// MaxSessions bounds open sessions (default 16): past it a login is
	// refused with 503, as a BMC's small session table does.
	MaxSessions int
}

// Redfish defaults.
const (
	DefaultRedfishSessionTimeout = 30 * time.Minute
	DefaultRedfishTaskDuration   = 300 * time.Millisecond
	DefaultRedfishSlowPowerOn    = 2 * time.Second
	DefaultRedfishMaxSessions    = 16
	// maxRedfishRequestBody bounds what a client may send.
	maxRedfishRequestBody = 64 << 10
)

func (c RedfishConfig) withDefaults() RedfishConfig {
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultRedfishSessionTimeout
	}
	if c.TaskDuration <= 0 {
		c.TaskDuration = DefaultRedfishTaskDuration
	}
	if c.SlowPowerOn <= 0 {
		c.SlowPowerOn = DefaultRedfishSlowPowerOn
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultRedfishMaxSessions
	}
	return c
}

// RedfishStats counts what a BMC's Redfish service was asked, for tests.
type RedfishStats struct {
	Logins       int // POSTs to Sessions, successful or not
	FailedLogins int
	Sessions     int // open now
	// BasicRequests counts requests authenticated with HTTP Basic,
	// RefusedRequests those refused with 401 (any scheme).
	BasicRequests   int
	RefusedRequests int
	Resets          map[string]int // ResetType -> actions performed
	BootPatches     int            // accepted PATCHes of Boot
	// PreconditionFailed counts PATCHes answered 412.
	PreconditionFailed int
	TasksStarted       int
}

// redfishServer is one BMC's Redfish service.
type redfishServer struct {
	b      *BMC
	cfg    RedfishConfig
	quirks RedfishQuirks
	log    *slog.Logger
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}

	mu       sync.Mutex
	sessions map[string]*redfishSession // (mu) by token
	nextID   int                        // (mu) session and task ids
	tasks    map[string]*redfishTask    // (mu) by id
	slowOn   *time.Timer                // (mu) slow-poweron: pending power on
	stats    RedfishStats               // (mu)
	closed   bool                       // (mu)
}

type redfishSession struct {
	id, token, user string
	lastUsed        time.Time
}

// newRedfishServer prepares b's Redfish service on ln (a TCP listener at
// the BMC's port) with the fleet's certificate.
func newRedfishServer(b *BMC, cfg RedfishConfig, ln net.Listener, cert tls.Certificate, log *slog.Logger) *redfishServer {
	cfg = cfg.withDefaults()
	s := &redfishServer{
		b:        b,
		cfg:      cfg,
		quirks:   cfg.Quirks,
		log:      log.With("protocol", "redfish"),
		ln:       ln,
		done:     make(chan struct{}),
		sessions: map[string]*redfishSession{},
		tasks:    map[string]*redfishTask{},
		stats:    RedfishStats{Resets: map[string]int{}},
	}
	if s.quirks == nil {
		s.quirks = RedfishQuirks{}
	}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s
}

func (s *redfishServer) serve() {
	go func() {
		defer close(s.done)
		err := s.srv.ServeTLS(s.ln, "", "")
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("Redfish service stopped", "err", err)
		}
	}()
}

func (s *redfishServer) close() {
	s.mu.Lock()
	s.closed = true
	if s.slowOn != nil {
		s.slowOn.Stop()
		s.slowOn = nil
	}
	for _, t := range s.tasks {
		t.stop()
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
}

// routes is the resource table: one handler per resource and method.
func (s *redfishServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /redfish", s.versions)
	mux.HandleFunc("GET /redfish/{$}", s.versions)
	mux.HandleFunc("GET /redfish/v1", s.serviceRoot)
	mux.HandleFunc("GET /redfish/v1/{$}", s.serviceRoot)
	if !s.quirks.Has(RedfishNoSessions) {
		mux.HandleFunc("GET /redfish/v1/SessionService", s.authed(s.sessionService))
		mux.HandleFunc("GET /redfish/v1/SessionService/Sessions", s.authed(s.sessionCollection))
		mux.HandleFunc("POST /redfish/v1/SessionService/Sessions", s.login)
		mux.HandleFunc("GET /redfish/v1/SessionService/Sessions/{id}", s.authed(s.getSession))
		mux.HandleFunc("DELETE /redfish/v1/SessionService/Sessions/{id}", s.authed(s.deleteSession))
	}
	mux.HandleFunc("GET /redfish/v1/Systems", s.authed(s.systemCollection))
	mux.HandleFunc("GET /redfish/v1/Systems/{id}", s.authed(s.getSystem))
	mux.HandleFunc("PATCH /redfish/v1/Systems/{id}", s.authed(s.patchSystem))
	mux.HandleFunc("POST /redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset", s.authed(s.reset))
	mux.HandleFunc("GET /redfish/v1/Systems/{id}/ResetActionInfo", s.authed(s.resetActionInfo))
	mux.HandleFunc("GET /redfish/v1/TaskService/Tasks/{id}", s.authed(s.getTask))
	mux.HandleFunc("GET /redfish/v1/TaskService/TaskMonitors/{id}", s.authed(s.taskMonitor))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("OData-Version", "4.0")
		r.Body = http.MaxBytesReader(w, r.Body, maxRedfishRequestBody)
		// Handler tells an unknown resource or method (answered with a
		// Redfish error) from a known one; ServeHTTP sets the path values.
		if h, pattern := mux.Handler(r); pattern == "" {
			probe := &statusProbe{header: http.Header{}}
			h.ServeHTTP(probe, r)
			if probe.status == http.StatusMethodNotAllowed {
				w.Header()["Allow"] = probe.header["Allow"]
				writeRedfishError(w, http.StatusMethodNotAllowed, baseMessage("OperationNotAllowed",
					"The HTTP method "+r.Method+" is not allowed on "+r.URL.Path+".",
					"Use a method listed in the Allow header."))
				return
			}
			s.notFound(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// statusProbe records what ServeMux's own 404/405 handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }

// notFound answers an unknown path with a Redfish error.
func (s *redfishServer) notFound(w http.ResponseWriter, r *http.Request) {
	writeRedfishError(w, http.StatusNotFound, baseMessage("ResourceMissingAtURI",
		fmt.Sprintf("The resource at the URI %s was not found.", r.URL.Path),
		"Place a valid resource at the URI or correct the URI and resubmit the request.", r.URL.Path))
}

// The message registry entries used (DSP8011 Base registry 1.x).
const baseRegistry = "Base.1.8."

func baseMessage(id, msg, resolution string, args ...string) map[string]any {
	if args == nil {
		args = []string{}
	}
	return map[string]any{
		"@odata.type": "#Message.v1_1_1.Message",
		"MessageId":   baseRegistry + id,
		"Message":     msg,
		"MessageArgs": args,
		"Severity":    "Warning",
		"Resolution":  resolution,
	}
}

// writeRedfishError writes a DSP0266 error response.
func writeRedfishError(w http.ResponseWriter, status int, info ...map[string]any) {
	body := map[string]any{"error": map[string]any{
		"code":                  baseRegistry + "GeneralError",
		"message":               "A general error has occurred. See ExtendedInfo for more information.",
		"@Message.ExtendedInfo": info,
	}}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// decodeRedfishBody reads a JSON object request body, refusing unknown
// properties of known resources as a real service does (400
// PropertyUnknown is the Base registry's answer).
func decodeRedfishBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeRedfishError(w, http.StatusBadRequest, baseMessage("MalformedJSON",
			"The request body submitted was malformed JSON and could not be parsed by the receiving service: "+err.Error(),
			"Ensure that the request body is valid JSON and resubmit the request."))
		return false
	}
	return true
}

// versions is GET /redfish (DSP0266 "Protocol version").
func (s *redfishServer) versions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"v1": "/redfish/v1/"})
}

// serviceRoot is GET /redfish/v1/, served without authentication
// (DSP0266 "Service root").
func (s *redfishServer) serviceRoot(w http.ResponseWriter, _ *http.Request) {
	root := map[string]any{
		"@odata.type":    "#ServiceRoot.v1_11_0.ServiceRoot",
		"@odata.id":      "/redfish/v1/",
		"Id":             "RootService",
		"Name":           "fakebmc Redfish service",
		"RedfishVersion": "1.15.0",
		"UUID":           s.b.uuid(),
		"Systems":        odataID("/redfish/v1/Systems"),
		"Links":          map[string]any{},
	}
	if !s.quirks.Has(RedfishNoSessions) {
		root["SessionService"] = odataID("/redfish/v1/SessionService")
		root["Links"] = map[string]any{"Sessions": odataID("/redfish/v1/SessionService/Sessions")}
	}
	writeJSON(w, http.StatusOK, root)
}

func odataID(p string) map[string]string { return map[string]string{"@odata.id": p} }

// authed checks a request's credentials (DSP0266 section 13.3
// "Authentication"): a live session's X-Auth-Token, or HTTP Basic unless
// the sessions-only quirk refuses it.
func (s *redfishServer) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if tok := r.Header.Get("X-Auth-Token"); tok != "" {
			if s.touchSession(tok) {
				h(w, r)
				return
			}
		} else if user, pass, ok := r.BasicAuth(); ok && !s.quirks.Has(RedfishSessionsOnly) {
			if s.checkPassword(user, pass) {
				s.mu.Lock()
				s.stats.BasicRequests++
				s.mu.Unlock()
				h(w, r)
				return
			}
		}
		s.mu.Lock()
		s.stats.RefusedRequests++
		s.mu.Unlock()
		if !s.quirks.Has(RedfishSessionsOnly) {
			w.Header().Set("WWW-Authenticate", `Basic realm="fakebmc"`)
		}
		writeRedfishError(w, http.StatusUnauthorized, baseMessage("NoValidSession",
			"There is no valid session established with the implementation.",
			"Establish a session before attempting any operations."))
	}
}

// checkPassword compares in constant time (fakebmc keeps passwords in
// clear, but need not leak them through timing either).
func (s *redfishServer) checkPassword(user, pass string) bool {
	want, _, ok := s.b.lookupUser(user)
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare(want, []byte(pass)) == 1
}

// Stats returns what the service was asked so far.
func (s *redfishServer) Stats() RedfishStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Sessions = len(s.sessions)
	st.Resets = make(map[string]int, len(s.stats.Resets))
	for k, v := range s.stats.Resets {
		st.Resets[k] = v
	}
	return st
}

// uuid is the system's UUID in its RFC 4122 text form, from the BMC's
// GUID (the same identity through both protocols).
func (b *BMC) uuid() string {
	g := b.cfg.GUID
	return fmt.Sprintf("%x-%x-%x-%x-%x", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}

// RedfishURL is the base URL of the BMC's Redfish service
// (https://host:port), or "" if it serves none.
func (b *BMC) RedfishURL() string {
	if b.redfish == nil {
		return ""
	}
	return "https://" + b.redfish.ln.Addr().String()
}

// RedfishStats reports what the BMC's Redfish service was asked (zero
// without Redfish).
func (b *BMC) RedfishStats() RedfishStats {
	if b.redfish == nil {
		return RedfishStats{}
	}
	return b.redfish.Stats()
}

// DropRedfishSessions ends every Redfish session without telling the
// clients, as a BMC restart or a session timeout does: their next request
// is answered 401.
func (b *BMC) DropRedfishSessions() {
	if b.redfish != nil {
		b.redfish.dropSessions()
	}
}

// RedfishCertPEM is the certificate the fleet's Redfish services present,
// PEM-encoded (nil if no BMC serves Redfish).
func (f *Fleet) RedfishCertPEM() []byte { return f.redfishCertPEM }

// RedfishURL is BMC i's Redfish base URL ("" without Redfish).
func (f *Fleet) RedfishURL(i int) string { return f.bmcs[i].RedfishURL() }
