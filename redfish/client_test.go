package redfish

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Client behaviour the fakebmc tests (package manager) do not reach: BMC
// shapes fakebmc does not take (ActionInfo only, Task resources polled
// with 200, several systems), and hostile answers (redirects, huge
// bodies, silence). Each test serves its own TLS service with
// httptest and pins its certificate.

type testService struct {
	srv    *httptest.Server
	logins atomic.Int64
	mu     sync.Mutex
	routes map[string]http.HandlerFunc // "METHOD /path"
}

func newTestService(t *testing.T) *testService {
	t.Helper()
	s := &testService{routes: map[string]http.HandlerFunc{}}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		h := s.routes[r.Method+" "+r.URL.Path]
		s.mu.Unlock()
		if h == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.handle("GET /redfish/v1/", jsonHandler(`{"Systems":{"@odata.id":"/redfish/v1/Systems"},"Links":{"Sessions":{"@odata.id":"/redfish/v1/SessionService/Sessions"}}}`))
	s.handle("POST /redfish/v1/SessionService/Sessions", func(w http.ResponseWriter, r *http.Request) {
		n := s.logins.Add(1)
		w.Header().Set("X-Auth-Token", fmt.Sprintf("tok%d", n))
		w.Header().Set("Location", fmt.Sprintf("/redfish/v1/SessionService/Sessions/%d", n))
		w.WriteHeader(http.StatusCreated)
	})
	s.handle("GET /redfish/v1/Systems", jsonHandler(`{"Members":[{"@odata.id":"/redfish/v1/Systems/1"}]}`))
	s.handle("GET /redfish/v1/Systems/1", jsonHandler(`{"@odata.id":"/redfish/v1/Systems/1","Id":"1","PowerState":"On",
		"Actions":{"#ComputerSystem.Reset":{"target":"/redfish/v1/Systems/1/Actions/ComputerSystem.Reset","@Redfish.ActionInfo":"/redfish/v1/Systems/1/ResetActionInfo"}}}`))
	s.handle("GET /redfish/v1/Systems/1/ResetActionInfo", jsonHandler(actionInfoBMCWeb))
	return s
}

func (s *testService) handle(route string, h http.HandlerFunc) {
	s.mu.Lock()
	s.routes[route] = h
	s.mu.Unlock()
}

func jsonHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

func (s *testService) client(t *testing.T, cfg Config) *Client {
	t.Helper()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	tlsCfg, err := TLSConfig(caPEM, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseURL, cfg.User, cfg.Password, cfg.TLS = s.srv.URL, "u", "p", tlsCfg
	if cfg.TaskPoll == 0 {
		cfg.TaskPoll = 10 * time.Millisecond
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestClientActionInfo: reset types come from the ActionInfo when the
// action lists none inline.
func TestClientActionInfo(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	c := s.client(t, Config{})
	got, err := c.ChooseReset(testCtx(t), ResetPushPowerButton, ResetPowerCycle, ResetForceRestart)
	if err != nil || got != ResetPowerCycle {
		t.Fatalf("ChooseReset = %q, %v; want PowerCycle from the ActionInfo", got, err)
	}
	var se *ServiceError
	if _, err := c.ChooseReset(testCtx(t), ResetPushPowerButton); !errors.As(err, &se) || !strings.Contains(err.Error(), "GracefulRestart") {
		t.Errorf("an unoffered type: %v, want a ServiceError listing what is allowed", err)
	}
}

// TestClientTaskResource: a 202 whose Location is the Task resource, which
// answers 200 Running until it is Completed; and a task that fails.
func TestClientTaskResource(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	var polls atomic.Int64
	state := "Completed"
	s.handle("POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset", func(w http.ResponseWriter, r *http.Request) {
		polls.Store(0)
		w.Header().Set("Location", "/redfish/v1/TaskService/Tasks/9")
		w.WriteHeader(http.StatusAccepted)
	})
	s.handle("GET /redfish/v1/TaskService/Tasks/9", func(w http.ResponseWriter, r *http.Request) {
		if polls.Add(1) < 3 {
			jsonHandler(taskRunning)(w, r)
			return
		}
		jsonHandler(`{"TaskState":"`+state+`","TaskStatus":"OK","Messages":[{"MessageId":"Base.1.8.Success"}]}`)(w, r)
	})
	c := s.client(t, Config{})
	if err := c.Reset(testCtx(t), ResetForceOff); err != nil {
		t.Fatal(err)
	}
	if polls.Load() != 3 {
		t.Errorf("the task was polled %d times, want until it completed (3)", polls.Load())
	}
	state = "Exception"
	var te *TaskError
	if err := c.Reset(testCtx(t), ResetForceOff); !errors.As(err, &te) || te.State != "Exception" {
		t.Errorf("a failed task: %v, want a TaskError", err)
	}
	if c.Status().TasksFollowed != 2 {
		t.Errorf("status: %+v", c.Status())
	}
}

// TestClientTaskDeadline: a task that never ends is abandoned when ctx
// ends.
func TestClientTaskDeadline(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	s.handle("POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/redfish/v1/TaskService/TaskMonitors/1")
		w.WriteHeader(http.StatusAccepted)
	})
	s.handle("GET /redfish/v1/TaskService/TaskMonitors/1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusAccepted)
	})
	c := s.client(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Reset(ctx, ResetOn)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("gave up after %v", el)
	}
}

// TestClientSystems: several systems need Config.System; a wrong one
// names the members.
func TestClientSystems(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	s.handle("GET /redfish/v1/Systems", jsonHandler(systemsTwo))
	s.handle("GET /redfish/v1/Systems/2", jsonHandler(`{"Id":"2","PowerState":"Off","Actions":{"#ComputerSystem.Reset":{"target":"/redfish/v1/Systems/2/Actions/ComputerSystem.Reset","ResetType@Redfish.AllowableValues":["On"]}}}`))
	var amb *AmbiguousSystemError
	if _, err := s.client(t, Config{}).PowerState(testCtx(t)); !errors.As(err, &amb) || !strings.Contains(err.Error(), "/redfish/v1/Systems/2") {
		t.Errorf("two systems, none chosen: %v", err)
	}
	var nss *NoSuchSystemError
	if _, err := s.client(t, Config{System: "3"}).PowerState(testCtx(t)); !errors.As(err, &nss) {
		t.Errorf("system 3: %v", err)
	}
	for _, sys := range []string{"2", "/redfish/v1/Systems/2", "/redfish/v1/Systems/2/"} {
		if st, err := s.client(t, Config{System: sys}).PowerState(testCtx(t)); err != nil || st != PowerOff {
			t.Errorf("system %q: %v, %v", sys, st, err)
		}
	}
}

// TestClientRedirectRefused: a redirect to another host is not followed
// (the token would go with it), and nothing is sent there.
func TestClientRedirectRefused(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int64
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	s := newTestService(t)
	s.handle("GET /redfish/v1/Systems", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/redfish/v1/Systems", http.StatusFound)
	})
	var re *RedirectError
	_, err := s.client(t, Config{}).PowerState(testCtx(t))
	if !errors.As(err, &re) || re.Status != 302 || !strings.Contains(re.Location, other.URL) {
		t.Fatalf("err = %v, want a RedirectError", err)
	}
	if elsewhere.Load() != 0 {
		t.Error("the client followed the redirect")
	}
}

// TestClientBodyBounded: an answer over MaxBody is refused, whether or
// not it announces its length.
func TestClientBodyBounded(t *testing.T) {
	t.Parallel()
	big := `{"Members":[` + strings.Repeat(`{"@odata.id":"/redfish/v1/Systems/1"},`, 60000) + `{"@odata.id":"/x"}]}`
	for _, chunked := range []bool{false, true} {
		s := newTestService(t)
		s.handle("GET /redfish/v1/Systems", func(w http.ResponseWriter, r *http.Request) {
			if !chunked {
				w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			}
			_, _ = w.Write([]byte(big))
		})
		var tl *BodyTooLargeError
		if _, err := s.client(t, Config{}).PowerState(testCtx(t)); !errors.As(err, &tl) || tl.Limit != DefaultMaxBody {
			t.Errorf("chunked %v: %v, want a BodyTooLargeError", chunked, err)
		}
	}
}

// TestClientETagStale: a PATCH with a stale ETag is retried once with a
// fresh one.
func TestClientETagStale(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	var gen atomic.Int64
	var bumpAfterGet atomic.Bool // someone changes the system right after our GET
	var patches []string
	var mu sync.Mutex
	s.handle("GET /redfish/v1/Systems/1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", fmt.Sprintf(`"e%d"`, gen.Add(1)))
		if bumpAfterGet.Swap(false) {
			gen.Add(1)
		}
		jsonHandler(`{"Id":"1","PowerState":"On","Actions":{"#ComputerSystem.Reset":{"target":"/r"}}}`)(w, r)
	})
	s.handle("PATCH /redfish/v1/Systems/1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		patches = append(patches, r.Header.Get("If-Match"))
		mu.Unlock()
		if r.Header.Get("If-Match") != fmt.Sprintf(`"e%d"`, gen.Load()) {
			w.WriteHeader(http.StatusPreconditionFailed)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c := s.client(t, Config{})
	if _, err := c.SetBootOverride(testCtx(t), BootTargetPxe); err != nil {
		t.Fatal(err)
	}
	bumpAfterGet.Store(true)
	if _, err := c.SetBootOverride(testCtx(t), BootTargetHdd); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(patches) != 4 || patches[0] != "" || patches[1] == "" {
		t.Errorf("If-Match headers sent: %q; want none, then the ETag, then a stale and a fresh one", patches)
	}
	if !c.Status().ETagRequired {
		t.Error("status does not say ETags are required")
	}
}

// TestClientBasicFallback: a service whose login answers 405 is used
// with HTTP Basic; one whose fresh token is refused is not looped on.
func TestClientBasicFallback(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	var basic atomic.Int64
	s.handle("POST /redfish/v1/SessionService/Sessions", func(w http.ResponseWriter, r *http.Request) {
		s.logins.Add(1)
		w.WriteHeader(http.StatusMethodNotAllowed)
	})
	s.handle("GET /redfish/v1/Systems", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		basic.Add(1)
		jsonHandler(`{"Members":[{"@odata.id":"/redfish/v1/Systems/1"}]}`)(w, r)
	})
	c := s.client(t, Config{})
	for range 3 {
		if _, err := c.PowerState(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if s.logins.Load() != 1 || basic.Load() != 1 || c.Status().Auth != "basic" {
		t.Errorf("logins %d, Basic GETs %d, status %+v", s.logins.Load(), basic.Load(), c.Status())
	}

	s2 := newTestService(t)
	var refused atomic.Int64
	s2.handle("GET /redfish/v1/Systems", func(w http.ResponseWriter, r *http.Request) {
		refused.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	})
	c2 := s2.client(t, Config{})
	var herr *HTTPError
	if _, err := c2.PowerState(testCtx(t)); !errors.As(err, &herr) || herr.Status != 401 {
		t.Fatalf("err = %v", err)
	}
	if _, err := c2.PowerState(testCtx(t)); err == nil {
		t.Fatal("second call succeeded")
	}
	if s2.logins.Load() != 1 || refused.Load() != 1 {
		t.Errorf("a refused fresh token: %d logins, %d refused requests; want 1 and 1 (held off)", s2.logins.Load(), refused.Load())
	}
}

// TestClientSilentService: a service that accepts connections and never
// answers fails when ctx ends, not later.
func TestClientSilentService(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, silent, until the test ends
		}
	}()
	c, err := New(Config{BaseURL: "https://" + ln.Addr().String(), User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.PowerState(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the deadline", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("gave up after %v", el)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]time.Duration{"": time.Second, "0": 0, "1": time.Second, "3600": maxRetryAfter, "soon": time.Second, "-2": time.Second} {
		if got := retryAfter(http.Header{"Retry-After": {v}}, time.Second); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

func TestServicePath(t *testing.T) {
	t.Parallel()
	c, err := New(Config{BaseURL: "https://10.0.0.4"})
	if err != nil {
		t.Fatal(err)
	}
	for loc, ok := range map[string]bool{
		"/redfish/v1/TaskService/TaskMonitors/1":              true,
		"https://10.0.0.4/redfish/v1/TaskService/Tasks/1":     true,
		"https://10.0.0.4:443/redfish/v1/x":                   true,
		"https://10.0.0.5/redfish/v1/x":                       false,
		"http://10.0.0.4/redfish/v1/x":                        false,
		"//evil.example/x":                                    false,
		"/redfish/v1/../../etc":                               false,
		"https://10.0.0.4:8443/redfish/v1/SessionService/S/1": false,
	} {
		if _, err := c.servicePath(loc); (err == nil) != ok {
			t.Errorf("servicePath(%q): %v, want ok %v", loc, err, ok)
		}
	}
	for _, base := range []string{"http://h", "https://h/redfish", "https://u:p@h", "h:443", "https://"} {
		if _, err := New(Config{BaseURL: base}); err == nil {
			t.Errorf("New accepted base URL %q", base)
		}
	}
}

// TestClientOneLoginForConcurrentCalls: calls racing on a fresh client
// share one session.
func TestClientOneLoginForConcurrentCalls(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	c := s.client(t, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := c.PowerState(testCtx(t)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.logins.Load(); n != 1 {
		t.Errorf("%d logins for 8 concurrent calls, want 1", n)
	}
}
