package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"obmd/store"
)

func newTestManager(t *testing.T, st NodeStore, reg *Registry, timeout time.Duration) *Manager {
	t.Helper()
	m, err := New(Config{Store: st, Drivers: reg, OpTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func registerT(t *testing.T, m *Manager, id, typ string, info json.RawMessage) {
	t.Helper()
	if err := m.Register(id, typ, info); err != nil {
		t.Fatalf("Register(%s): %v", id, err)
	}
}

func mustToken(t *testing.T, m *Manager, id string) string {
	t.Helper()
	tok, err := m.NewToken(id)
	if err != nil {
		t.Fatalf("NewToken(%s): %v", id, err)
	}
	return tok
}

func mustAccess(t *testing.T, m *Manager, id, tok string) *Access {
	t.Helper()
	a, err := m.Authorize(id, tok)
	if err != nil {
		t.Fatalf("Authorize(%s): %v", id, err)
	}
	return a
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := BuiltinDrivers()
	if got := strings.Join(r.Names(), ","); got != "ipmi,mock,redfish" {
		t.Errorf("BuiltinDrivers().Names() = %s, want ipmi,mock,redfish", got)
	}
	if err := r.Register("mock", MockDriverType()); err == nil {
		t.Error("registering \"mock\" twice succeeded")
	}
	if err := r.Register("x", DriverType{}); err == nil {
		t.Error("registering a type without ParseInfo succeeded")
	}
	if _, err := r.lookup("ilo"); !errors.Is(err, ErrInvalid) {
		t.Errorf("lookup(ilo) = %v, want ErrInvalid", err)
	}
}

func TestRegisterErrors(t *testing.T) {
	t.Parallel()
	// A registry whose "ipmi" type validates but has no driver to build (a
	// type known but not available): registration is refused, never faked.
	reg := NewRegistry()
	mustRegister(reg, "mock", MockDriverType())
	mustRegister(reg, "ipmi", typedDriver("ipmi", ParseIPMIInfo, nil))
	m := newTestManager(t, newMemStore(), reg, time.Second)
	registerT(t, m, "n1", "mock", json.RawMessage(`{"addr":"10.0.0.4","NumWrites":0}`))

	cases := []struct {
		name string
		id   string
		typ  string
		info string
		want error
	}{
		{"existing node", "n1", "mock", `{"addr":"x"}`, ErrExists},
		{"unknown type", "n2", "redfish", `{}`, ErrInvalid},
		{"unknown mock field", "n2", "mock", `{"addr":"x","color":"red"}`, ErrInvalid},
		{"mock without addr", "n2", "mock", `{"NumWrites":0}`, ErrInvalid},
		{"info not an object", "n2", "mock", `[1]`, ErrInvalid},
		{"empty id", "", "mock", `{"addr":"x"}`, ErrInvalid},
		{"id with slash", "a/b", "mock", `{"addr":"x"}`, ErrInvalid},
		{"bad ipmi info while ipmi unavailable", "n2", "ipmi", `{"addr":"h"}`, ErrInvalid},
		{"valid ipmi info while ipmi unavailable", "n2", "ipmi", `{"addr":"h","user":"u","pass":"p"}`, ErrUnsupported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Register(tc.id, tc.typ, json.RawMessage(tc.info))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Register = %v, want kind %v", err, tc.want)
			}
		})
	}
	if ids := m.NodeIDs(); len(ids) != 1 {
		t.Errorf("failed registrations left nodes behind: %v", ids)
	}
}

func TestRegisterStoreFailureLeavesNoNode(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	m := newTestManager(t, st, newFakeRegistry(t).Registry, time.Second)
	st.fail = errors.New("disk full")
	if err := m.Register("n", "fake", fakeInfoJSON("a")); !errors.Is(err, ErrInternal) {
		t.Fatalf("Register with a failing store = %v, want ErrInternal", err)
	}
	if len(m.NodeIDs()) != 0 {
		t.Fatal("node registered in memory although the store refused it")
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	fr := newFakeRegistry(t)
	st := newMemStore()
	m := newTestManager(t, st, fr.Registry, time.Second)
	registerT(t, m, "n", "fake", fakeInfoJSON("a"))
	tok := mustToken(t, m, "n")
	d := fr.driver(t, "n")
	if err := m.Delete(context.Background(), "n"); err != nil {
		t.Fatal(err)
	}
	if !d.isClosed() {
		t.Error("Delete returned before closing the driver")
	}
	if _, err := m.Authorize("n", tok); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("token of a deleted node: %v, want ErrUnauthorized", err)
	}
	if err := m.Delete(context.Background(), "n"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if recs, _ := st.Nodes(); len(recs) != 0 {
		t.Errorf("store still holds %d nodes", len(recs))
	}
	// Re-registering after a delete works.
	registerT(t, m, "n", "fake", fakeInfoJSON("b"))
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestTokens(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	m := newTestManager(t, st, newFakeRegistry(t).Registry, time.Second)
	registerT(t, m, "n", "fake", fakeInfoJSON("a"))

	if _, err := m.Authorize("n", ""); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a node without a token accepted the empty token: %v", err)
	}
	old := mustToken(t, m, "n")
	if !hex32.MatchString(old) {
		t.Fatalf("token %q is not 32 lowercase hex digits", old)
	}
	oldAccess := mustAccess(t, m, "n", old)
	mustAccess(t, m, "n", strings.ToUpper(old)) // hex is case-insensitive

	// Only the SHA-256 of the token's 16 bytes reaches the store.
	raw, _ := hex.DecodeString(old)
	sum := sha256.Sum256(raw)
	recs, _ := st.Nodes()
	if string(recs[0].TokenHash) != string(sum[:]) {
		t.Fatalf("stored token hash %x, want sha256(token) %x", recs[0].TokenHash, sum)
	}

	cur := mustToken(t, m, "n")
	if cur == old {
		t.Fatal("NewToken returned the same token twice")
	}
	if _, err := m.Authorize("n", old); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("old token after rotation: %v, want ErrUnauthorized", err)
	}
	if err := oldAccess.PowerOn(context.Background()); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("operation through an access granted to the old token: %v, want ErrUnauthorized", err)
	}
	a := mustAccess(t, m, "n", cur)
	if err := a.PowerOn(context.Background()); err != nil {
		t.Errorf("PowerOn with the new token: %v", err)
	}

	if err := m.RevokeToken("n"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authorize("n", cur); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("revoked token: %v, want ErrUnauthorized", err)
	}
	if err := m.RevokeToken("n"); err != nil {
		t.Errorf("revoking when there is no token: %v, want success", err)
	}
	if err := m.RevokeToken("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeToken(missing) = %v, want ErrNotFound", err)
	}
	if _, err := m.NewToken("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("NewToken(missing) = %v, want ErrNotFound", err)
	}
}

// TestUnauthorizedLooksTheSame checks that an unknown node and a wrong
// token give the very same error.
func TestUnauthorizedLooksTheSame(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, newMemStore(), newFakeRegistry(t).Registry, time.Second)
	registerT(t, m, "n", "fake", fakeInfoJSON("a"))
	tok := mustToken(t, m, "n")
	wrong := strings.Repeat("0", 32)
	cases := []struct{ name, id, tok string }{
		{"wrong token", "n", wrong},
		{"malformed token", "n", "xyz"},
		{"missing token", "n", ""},
		{"unknown node", "nope", wrong},
		{"unknown node with another node's token", "nope", tok},
	}
	var first string
	for _, tc := range cases {
		_, err := m.Authorize(tc.id, tc.tok)
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("%s: %v, want ErrUnauthorized", tc.name, err)
		}
		if first == "" {
			first = err.Error()
		} else if err.Error() != first {
			t.Errorf("%s: message %q differs from %q", tc.name, err.Error(), first)
		}
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "db")
	open := func() (*store.Store, *Manager) {
		st, err := store.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(Config{Store: st, OpTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return st, m
	}
	st, m := open()
	registerT(t, m, "n1", "mock", json.RawMessage(`{"addr":"a","NumWrites":5}`))
	registerT(t, m, "n2", "mock", json.RawMessage(`{"addr":"b"}`))
	tok := mustToken(t, m, "n1")
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, m = open()
	defer st.Close()
	defer m.Close(context.Background())
	if got := strings.Join(m.NodeIDs(), ","); got != "n1,n2" {
		t.Fatalf("after restart nodes = %s, want n1,n2", got)
	}
	a := mustAccess(t, m, "n1", tok)
	if s, err := a.PowerStatus(context.Background()); err != nil || s != "Mock Status" {
		t.Fatalf("PowerStatus after restart = %q, %v", s, err)
	}
	if _, err := m.Authorize("n2", tok); !errors.Is(err, ErrUnauthorized) {
		t.Fatal("n1's token opened n2 after restart")
	}
}

func TestStoredNodeWithoutDriverIsKept(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	st.nodes["old"] = store.NodeRecord{ID: "old", Type: "gone", Info: json.RawMessage(`{}`)}
	m := newTestManager(t, st, newFakeRegistry(t).Registry, time.Second)
	tok := mustToken(t, m, "old")
	a := mustAccess(t, m, "old", tok)
	if err := a.PowerOn(context.Background()); err == nil {
		t.Fatal("PowerOn on a node without a driver succeeded")
	}
	if _, err := a.OpenConsole(context.Background(), 0); err == nil {
		t.Fatal("OpenConsole on a node without a driver succeeded")
	}
	if err := m.Delete(context.Background(), "old"); err != nil {
		t.Fatalf("deleting a node without a driver: %v", err)
	}
}

func TestDriverErrorKinds(t *testing.T) {
	t.Parallel()
	fr := newFakeRegistry(t)
	m := newTestManager(t, newMemStore(), fr.Registry, time.Second)
	registerT(t, m, "n", "fake", fakeInfoJSON("a"))
	a := mustAccess(t, m, "n", mustToken(t, m, "n"))
	d := fr.driver(t, "n")
	cases := []struct {
		name     string
		err      error
		want     error
		contains string
	}{
		{"plain error is a BMC error", errors.New("completion code 0xC1 invalid command"), ErrBMC, "power on: completion code 0xC1"},
		{"deadline is a timeout", context.DeadlineExceeded, ErrTimeout, "power on: the BMC did not answer within 1s"},
		{"net timeout is a timeout", timeoutErr{}, ErrTimeout, "i/o timeout"},
		{"kind kept", Invalidf("bad device"), ErrInvalid, "bad device"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d.setHook(func(context.Context, string) error { return tc.err })
			err := a.PowerOn(context.Background())
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("PowerOn = %v, want kind %v containing %q", err, tc.want, tc.contains)
			}
		})
	}
	d.setHook(nil)
	if err := a.SetBootDevice(context.Background(), "floppy"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown boot device = %v, want ErrInvalid", err)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "read udp: i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

// TestPerNodeSerialisation blocks one node's BMC and checks that another
// node is unaffected and that the blocked node's next operation waits its
// turn instead of running concurrently.
func TestPerNodeSerialisation(t *testing.T) {
	t.Parallel()
	fr := newFakeRegistry(t)
	m := newTestManager(t, newMemStore(), fr.Registry, 10*time.Second)
	registerT(t, m, "stalled", "fake", fakeInfoJSON("a"))
	registerT(t, m, "healthy", "fake", fakeInfoJSON("b"))
	stalled := mustAccess(t, m, "stalled", mustToken(t, m, "stalled"))
	healthy := mustAccess(t, m, "healthy", mustToken(t, m, "healthy"))

	entered := make(chan string, 4)
	release := make(chan struct{})
	ds := fr.driver(t, "stalled")
	ds.setHook(func(_ context.Context, op string) error {
		entered <- op
		<-release
		return nil
	})
	first := make(chan error, 1)
	go func() { first <- stalled.PowerOn(context.Background()) }()
	if op := <-entered; op != "on" {
		t.Fatalf("first call %q", op)
	}
	second := make(chan error, 1)
	go func() { second <- stalled.PowerOff(context.Background()) }()

	// The healthy node answers while the stalled one holds its slot.
	done := make(chan error, 1)
	go func() { done <- healthy.PowerCycle(context.Background(), true) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an operation on a healthy node waited for a stalled node")
	}
	select {
	case op := <-entered:
		t.Fatalf("%q entered the driver while another call was running", op)
	default:
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if op := <-entered; op != "off" {
		t.Fatalf("second call %q", op)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.maxFlight != 1 {
		t.Errorf("up to %d concurrent calls on one node's driver, want 1", ds.maxFlight)
	}
}

// TestOperationTimeout uses a driver that ignores its context: the caller
// still gets ErrTimeout at the deadline, and the next caller times out
// waiting rather than running alongside the stuck call.
func TestOperationTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fr := newFakeRegistry(t)
		m, err := New(Config{Store: newMemStore(), Drivers: fr.Registry, OpTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		registerT(t, m, "n", "fake", fakeInfoJSON("a"))
		a := mustAccess(t, m, "n", mustToken(t, m, "n"))
		release := make(chan struct{})
		fr.driver(t, "n").setHook(func(context.Context, string) error { <-release; return nil })

		start := time.Now()
		err = a.PowerOn(context.Background())
		if !errors.Is(err, ErrTimeout) || time.Since(start) != 10*time.Second {
			t.Fatalf("PowerOn = %v after %v, want ErrTimeout after 10s", err, time.Since(start))
		}
		err = a.PowerOff(context.Background())
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "earlier operation") {
			t.Fatalf("queued PowerOff = %v, want a timeout naming the earlier operation", err)
		}
		close(release)
		synctest.Wait()
		if err := a.PowerOff(context.Background()); err != nil {
			t.Fatalf("PowerOff after the stuck call returned: %v", err)
		}
		m.Close(context.Background())
	})
}

func TestMockDriverThroughManager(t *testing.T) {
	t.Parallel()
	fr := newFakeRegistry(t)
	m := newTestManager(t, newMemStore(), fr.Registry, time.Second)
	registerT(t, m, "n", "mock", json.RawMessage(`{"addr":"10.0.0.4","NumWrites":0}`))
	a := mustAccess(t, m, "n", mustToken(t, m, "n"))
	ctx := context.Background()
	if s, err := a.PowerStatus(ctx); err != nil || s != "Mock Status" {
		t.Fatalf("PowerStatus = %q, %v", s, err)
	}
	for _, dev := range []string{"A", "B"} {
		if err := a.SetBootDevice(ctx, dev); err != nil {
			t.Errorf("SetBootDevice(%s): %v", dev, err)
		}
	}
	if err := a.SetBootDevice(ctx, "pxe"); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetBootDevice(pxe) on the mock = %v, want ErrInvalid", err)
	}
	v, err := a.OpenConsole(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	got := readLines(t, v, 50)
	for i, line := range got {
		if want := strconv.Itoa(i); line != want {
			t.Fatalf("console line %d = %q, want %q", i, line, want)
		}
	}
}

// readLines reads n newline-terminated lines from r.
func readLines(t *testing.T, r io.Reader, n int) []string {
	t.Helper()
	var lines []string
	var cur []byte
	buf := make([]byte, 1)
	for len(lines) < n {
		if _, err := r.Read(buf); err != nil {
			t.Fatalf("after %d lines: %v", len(lines), err)
		}
		if buf[0] == '\n' {
			lines = append(lines, string(cur))
			cur = cur[:0]
			continue
		}
		cur = append(cur, buf[0])
	}
	return lines
}

func TestDriverPanicIsContained(t *testing.T) {
	t.Parallel()
	fr := newFakeRegistry(t)
	m := newTestManager(t, newMemStore(), fr.Registry, time.Second)
	registerT(t, m, "n", "fake", fakeInfoJSON("a"))
	a := mustAccess(t, m, "n", mustToken(t, m, "n"))
	fr.driver(t, "n").setHook(func(context.Context, string) error { panic("nil map") })
	if err := a.PowerOn(context.Background()); !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("PowerOn with a panicking driver = %v, want ErrInternal naming the panic", err)
	}
	fr.driver(t, "n").setHook(nil)
	if err := a.PowerOn(context.Background()); err != nil {
		t.Fatalf("the node is unusable after a driver panic: %v", err)
	}
}

// TestManagerNegativeLingerClosesAtOnce: the manager hands HubConfig to the
// hub as given, so Linger < 0 ("close at once") is not turned into the
// 30 s default on the way.
func TestManagerNegativeLingerClosesAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := newFakeRegistry(t)
		m, err := New(Config{Store: newMemStore(), Drivers: reg.Registry, Console: HubConfig{Linger: -1}})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(context.Background())
		registerT(t, m, "n1", "fake", fakeInfoJSON("n1"))
		a := mustAccess(t, m, "n1", mustToken(t, m, "n1"))
		v, err := a.OpenConsole(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		s := <-reg.driver(t, "n1").opened
		v.Close()
		synctest.Wait()
		select {
		case <-s.closed:
		default:
			t.Fatal("driver console still open after the last viewer left with Linger -1")
		}
	})
}

// TestPowerCycleDeadlines: a soft power cycle waits for the OS to shut down,
// so it gets SoftCycleTimeout; a forced one and every other operation get
// OpTimeout.
func TestPowerCycleDeadlines(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := newFakeRegistry(t)
		m, err := New(Config{Store: newMemStore(), Drivers: reg.Registry, OpTimeout: 10 * time.Second, SoftCycleTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(context.Background())
		registerT(t, m, "n1", "fake", fakeInfoJSON("n1"))
		a := mustAccess(t, m, "n1", mustToken(t, m, "n1"))
		budget := map[string]time.Duration{}
		reg.driver(t, "n1").setHook(func(ctx context.Context, op string) error {
			dl, ok := ctx.Deadline()
			if !ok {
				t.Errorf("%s: no deadline", op)
			}
			budget[op] = time.Until(dl)
			return nil
		})
		ctx := context.Background()
		if err := a.PowerCycle(ctx, false); err != nil {
			t.Fatal(err)
		}
		if err := a.PowerCycle(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := a.PowerOn(ctx); err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Duration{"cycle force=false": time.Minute, "cycle force=true": 10 * time.Second, "on": 10 * time.Second}
		for op, w := range want {
			if budget[op] != w {
				t.Errorf("%s got a %v deadline, want %v", op, budget[op], w)
			}
		}
	})
}

// TestRevokedWhileConsoleOpens: a token revoked while its console is still
// opening gets ErrUnauthorized, not a stream that ends at once, and the
// open, wanted by nobody any more, is abandoned (issue 9, defect 7).
func TestRevokedWhileConsoleOpens(t *testing.T) {
	t.Parallel()
	for _, change := range []string{"revoke", "replace", "delete"} {
		t.Run(change, func(t *testing.T) {
			t.Parallel()
			fr := newFakeRegistry(t)
			m := newTestManager(t, newMemStore(), fr.Registry, 5*time.Second)
			registerT(t, m, "n", "fake", fakeInfoJSON("n"))
			a := mustAccess(t, m, "n", mustToken(t, m, "n"))
			d := fr.driver(t, "n")
			opening := make(chan struct{})
			abandoned := make(chan struct{})
			d.mu.Lock()
			d.openGate = func(ctx context.Context) error {
				close(opening)
				<-ctx.Done()
				close(abandoned)
				return ctx.Err()
			}
			d.mu.Unlock()
			got := make(chan error, 1)
			go func() {
				v, err := a.OpenConsole(context.Background(), 0)
				if v != nil {
					v.Close()
				}
				got <- err
			}()
			<-opening
			var err error
			switch change {
			case "revoke":
				err = m.RevokeToken("n")
			case "replace":
				_, err = m.NewToken("n")
			case "delete":
				err = m.Delete(context.Background(), "n")
			}
			if err != nil {
				t.Fatal(err)
			}
			want := ErrUnauthorized
			if change == "delete" {
				want = ErrNotFound
			}
			if err := <-got; !errors.Is(err, want) {
				t.Errorf("OpenConsole after the token changed mid-open: %v, want %v", err, want)
			}
			<-abandoned // the driver's open was cancelled: no console for nobody
		})
	}
}
