package api

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"obmd/fakebmc"
	"obmd/manager"
)

// "redfish" nodes through the REST API: what HIL and the admin see for bad
// registrations and for BMCs that misbehave, with status codes, tenant
// messages and the admin's detail. The happy path against a real obmd
// process is in cmd/obmd (TestDaemonHILFlowRedfish); the driver's
// behaviour per quirk is in package manager.

func startE2ERedfish(t *testing.T, rc fakebmc.RedfishConfig) *fakebmc.Fleet {
	t.Helper()
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{
			Users:   []fakebmc.User{{Name: e2eUser, Password: []byte(e2ePass)}},
			StartOn: true,
			Redfish: &rc,
		},
	})
	if err != nil {
		t.Fatalf("StartFleet: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// registerRedfish adds a redfish node and returns its token.
func (e *ipmiE2E) registerRedfish(id string, info map[string]any) e2eNode {
	e.t.Helper()
	body, err := json.Marshal(map[string]any{"type": "redfish", "info": info})
	if err != nil {
		e.t.Fatal(err)
	}
	e.must("PUT", "/node/"+id, string(body), true, 200)
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(e.must("POST", "/node/"+id+"/token", "", true, 200)), &tok); err != nil {
		e.t.Fatal(err)
	}
	return e2eNode{e: e, id: id, tok: tok.Token}
}

// lastError is the admin's view of a node's last failed operation.
func (e *ipmiE2E) lastError(id string) string {
	e.t.Helper()
	var st manager.NodeStatus
	if err := json.Unmarshal([]byte(e.must("GET", "/node/"+id, "", true, 200)), &st); err != nil {
		e.t.Fatal(err)
	}
	if st.LastError == nil {
		return ""
	}
	return st.LastError.Error
}

// hostileService is an HTTPS service whose Systems collection is h.
func hostileService(t *testing.T, h http.HandlerFunc) (url, caPEM string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redfish/v1/":
			_, _ = w.Write([]byte(`{"Systems":{"@odata.id":"/redfish/v1/Systems"},"Links":{"Sessions":{"@odata.id":"/redfish/v1/SessionService/Sessions"}}}`))
		case "/redfish/v1/SessionService/Sessions":
			w.Header().Set("X-Auth-Token", "t")
			w.Header().Set("Location", "/redfish/v1/SessionService/Sessions/1")
			w.WriteHeader(http.StatusCreated)
		default:
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// TestRedfishBadRegistrations: missing and extra fields are a 400 naming
// them, at registration.
func TestRedfishBadRegistrations(t *testing.T) {
	t.Parallel()
	e := newIPMIE2E(t)
	for _, tc := range []struct{ body, says string }{
		{`{"type": "redfish", "info": {"addr": "10.0.0.4", "user": "u"}}`, "pass is missing"},
		{`{"type": "redfish", "info": {"user": "u", "pass": "p"}}`, "addr is missing"},
		{`{"type": "redfish", "info": {"addr": "10.0.0.4", "user": "u", "pass": "p", "kg": "00"}}`, `unknown field \"kg\"`},
		{`{"type": "redfish", "info": {"addr": "http://10.0.0.4", "user": "u", "pass": "p"}}`, "plain http is refused"},
		{`{"type": "redfish", "info": {"addr": "10.0.0.4", "user": "u", "pass": "p", "ca_cert": "not PEM"}}`, "ca_cert"},
		{`{"type": "redfish", "info": {"addr": "10.0.0.4", "user": "u", "pass": "p", "console": {"type": "ipmi", "cipher_suite": 99}}}`, "console: cipher_suite 99"},
	} {
		body := e.must("PUT", "/node/bad", tc.body, true, 400)
		if !strings.Contains(body, tc.says) {
			t.Errorf("%s: %s does not say %q", tc.body, body, tc.says)
		}
	}
	e.must("GET", "/node/bad", "", true, 404)
}

// TestRedfishMisbehavingBMCs: each failure gets its status, a tenant
// message without the BMC's address or user, and the detail for the admin.
func TestRedfishMisbehavingBMCs(t *testing.T) {
	t.Parallel()
	e := newIPMIE2E(t)
	f := startE2ERedfish(t, fakebmc.RedfishConfig{})
	ca := string(f.RedfishCertPEM())
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(f.RedfishURL(0), "https://"))
	tenantSafe := func(t *testing.T, body string) {
		t.Helper()
		for _, secret := range []string{host + ":", port, e2eUser, e2ePass} {
			if strings.Contains(body, secret) {
				t.Errorf("tenant's error %s reveals %q", body, secret)
			}
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		n := e.registerRedfish("wrongpw", map[string]any{"addr": f.RedfishURL(0), "user": e2eUser, "pass": "not-it", "ca_cert": ca})
		for range 4 {
			st, body := e.call("GET", n.path("power_status"), "", false)
			if st != http.StatusBadGateway || !strings.Contains(body, "credentials") {
				t.Fatalf("power_status: %d %s", st, body)
			}
			tenantSafe(t, body)
		}
		if got := f.BMC(0).RedfishStats().FailedLogins; got != 1 {
			t.Errorf("%d failed logins for four calls: a retry storm locks accounts", got)
		}
		if le := e.lastError("wrongpw"); !strings.Contains(le, "401") || !strings.Contains(le, "ResourceAtUriUnauthorized") {
			t.Errorf("admin's last error %q lacks the BMC's answer", le)
		}
	})

	t.Run("certificate without ca_cert", func(t *testing.T) {
		n := e.registerRedfish("notrust", map[string]any{"addr": f.RedfishURL(0), "user": e2eUser, "pass": e2ePass})
		st, body := e.call("POST", n.path("power_off"), "", false)
		if st != http.StatusBadGateway || !strings.Contains(body, "TLS") {
			t.Fatalf("power_off: %d %s, want 502 naming TLS", st, body)
		}
		tenantSafe(t, body)
		if le := e.lastError("notrust"); !strings.Contains(le, "TLS") || !strings.Contains(le, "ca_cert") {
			t.Errorf("admin's last error %q", le)
		}
		if !f.BMC(0).PowerOn() {
			t.Error("the machine went off through an unverified connection")
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		// A service that accepts TCP connections and never answers (a hung
		// BMC web server): the TLS handshake never completes.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		n := e.registerRedfish("silent", map[string]any{"addr": ln.Addr().String(), "user": e2eUser, "pass": e2ePass, "ca_cert": ca})
		start := time.Now()
		st, body := e.call("POST", n.path("power_on"), "", false)
		elapsed := time.Since(start)
		if st != http.StatusGatewayTimeout {
			t.Fatalf("power_on: %d %s, want 504", st, body)
		}
		// The operation deadline is e2eOpTimeout; the margin is for a
		// loaded 2-core machine.
		if elapsed < e2eOpTimeout-100*time.Millisecond || elapsed > e2eOpTimeout+3*time.Second {
			t.Errorf("504 after %v, want about %v", elapsed, e2eOpTimeout)
		}
		tenantSafe(t, body)
	})

	t.Run("2 MB answer", func(t *testing.T) {
		url, caPEM := hostileService(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"Members":[` + strings.Repeat(" ", 2<<20) + `]}`))
		})
		n := e.registerRedfish("huge", map[string]any{"addr": url, "user": e2eUser, "pass": e2ePass, "ca_cert": caPEM})
		st, body := e.call("GET", n.path("power_status"), "", false)
		if st != http.StatusBadGateway || !strings.Contains(body, "refused") {
			t.Fatalf("power_status: %d %s", st, body)
		}
		if le := e.lastError("huge"); !strings.Contains(le, "larger than 1048576 bytes") {
			t.Errorf("admin's last error %q", le)
		}
	})

	t.Run("redirect to another host", func(t *testing.T) {
		var elsewhere atomic.Int64
		other := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
		t.Cleanup(other.Close)
		url, caPEM := hostileService(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
		})
		n := e.registerRedfish("redirect", map[string]any{"addr": url, "user": e2eUser, "pass": e2ePass, "ca_cert": caPEM})
		st, body := e.call("POST", n.path("power_off"), "", false)
		if st != http.StatusBadGateway || !strings.Contains(body, "redirect") || strings.Contains(body, other.URL) {
			t.Fatalf("power_off: %d %s", st, body)
		}
		if le := e.lastError("redirect"); !strings.Contains(le, other.URL) || !strings.Contains(le, "refused") {
			t.Errorf("admin's last error %q should name the refused target", le)
		}
		if elsewhere.Load() != 0 {
			t.Error("the redirect was followed")
		}
	})

	t.Run("several systems", func(t *testing.T) {
		url, caPEM := hostileService(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"Members":[{"@odata.id":"/redfish/v1/Systems/Blade1"},{"@odata.id":"/redfish/v1/Systems/Blade2"}]}`))
		})
		n := e.registerRedfish("blades", map[string]any{"addr": url, "user": e2eUser, "pass": e2ePass, "ca_cert": caPEM})
		st, body := e.call("GET", n.path("power_status"), "", false)
		if st != http.StatusBadRequest || !strings.Contains(body, "/redfish/v1/Systems/Blade1") || !strings.Contains(body, `\"system\"`) {
			t.Fatalf("power_status: %d %s, want 400 naming the members and the system field", st, body)
		}
	})

	t.Run("no console", func(t *testing.T) {
		n := e.registerRedfish("nocon", map[string]any{"addr": f.RedfishURL(0), "user": e2eUser, "pass": e2ePass, "ca_cert": ca})
		st, body := e.call("GET", n.path("console"), "", false)
		if st != http.StatusNotImplemented || !strings.Contains(body, "no console") {
			t.Fatalf("console: %d %s, want 501 saying the node has no console", st, body)
		}
	})
}
