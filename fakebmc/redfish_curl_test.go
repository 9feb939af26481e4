package fakebmc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"obmd/internal/peertest"
)

// curl is a Redfish client nobody on this project wrote: these tests drive
// fakebmc's Redfish service with it, so the service is not checked only by
// obmd's own client. Passwords reach curl through a config file on its
// standard input (-K -), never its argument list.

const rfPass = "rf-Secret-77"

// startRedfishFleet serves one BMC with Redfish and writes the fleet's
// certificate to a file for --cacert.
func startRedfishFleet(t *testing.T, rc RedfishConfig) (*Fleet, string) {
	t.Helper()
	f, err := StartFleet(context.Background(), FleetConfig{
		Addr: "127.0.0.1:0",
		BMC: BMCConfig{
			Users:   []User{{Name: "admin", Password: []byte(rfPass)}},
			StartOn: true,
			Timing:  PowerTiming{CycleOff: 50 * time.Millisecond, SoftShutdown: 50 * time.Millisecond},
			Redfish: &rc,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ca := filepath.Join(t.TempDir(), "redfish.pem")
	if err := os.WriteFile(ca, f.RedfishCertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, ca
}

type curlResult struct {
	status  int
	headers http.Header
	body    []byte
	exit    int
	stderr  string
}

// curl runs curl with config (secrets) on stdin and args, returning the
// HTTP status, headers and body.
func curl(t *testing.T, config string, args ...string) curlResult {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed: apt-get install curl")
	}
	dir := t.TempDir()
	hdrFile, bodyFile := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	argv := append([]string{"-sS", "--max-time", "10", "-K", "-", "-D", hdrFile, "-o", bodyFile, "-w", "%{http_code}"}, args...)
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Stdin = strings.NewReader(config)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	res := curlResult{stderr: stderr.String(), headers: http.Header{}}
	if ee, ok := err.(*exec.ExitError); ok {
		res.exit = ee.ExitCode()
		return res
	} else if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	res.status, _ = strconv.Atoi(strings.TrimSpace(stdout.String()))
	res.body, _ = os.ReadFile(bodyFile)
	raw, _ := os.ReadFile(hdrFile)
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			res.headers.Add(k, strings.TrimSpace(v))
		}
	}
	return res
}

// curlConfigString quotes s for a curl config file.
func curlConfigString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestRedfishCurlHILFlow: curl logs in (SessionService), reads the system,
// powers it off and on, sets a boot override and logs out; ipmitool and
// the machine see every change, and the session is gone afterwards.
func TestRedfishCurlHILFlow(t *testing.T) {
	t.Parallel()
	f, ca := startRedfishFleet(t, RedfishConfig{})
	base := f.RedfishURL(0)
	b := f.BMC(0)

	// The service root answers without credentials (DSP0266).
	r := curl(t, "", "--cacert", ca, base+"/redfish/v1/")
	if r.status != 200 || !strings.Contains(string(r.body), `"/redfish/v1/SessionService/Sessions"`) {
		t.Fatalf("service root: %d %s %s", r.status, r.body, r.stderr)
	}
	// Nothing else does.
	if r := curl(t, "", "--cacert", ca, base+"/redfish/v1/Systems/1"); r.status != 401 {
		t.Fatalf("system without credentials: %d, want 401", r.status)
	}

	login := fmt.Sprintf(`{"UserName": "admin", "Password": %q}`, rfPass)
	r = curl(t, "data = "+curlConfigString(login)+"\n", "--cacert", ca, "-H", "Content-Type: application/json", base+"/redfish/v1/SessionService/Sessions")
	token, loc := r.headers.Get("X-Auth-Token"), r.headers.Get("Location")
	if r.status != 201 || token == "" || loc == "" {
		t.Fatalf("login: %d token %q location %q %s", r.status, token, loc, r.stderr)
	}
	auth := "header = " + curlConfigString("X-Auth-Token: "+token) + "\n"

	r = curl(t, auth, "--cacert", ca, base+"/redfish/v1/Systems/1")
	var sys struct {
		PowerState string
		Actions    map[string]struct {
			Target  string   `json:"target"`
			Allowed []string `json:"ResetType@Redfish.AllowableValues"`
		}
	}
	if r.status != 200 || json.Unmarshal(r.body, &sys) != nil || sys.PowerState != "On" {
		t.Fatalf("system: %d %s", r.status, r.body)
	}
	if r.headers.Get("ETag") == "" {
		t.Error("system answered without an ETag")
	}
	target := sys.Actions["#ComputerSystem.Reset"].Target

	tg := peertest.Target{Port: b.Addr().Port, Username: "admin", Password: rfPass}
	ipmiPower := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res := peertest.Ipmitool(t, ctx, tg, "-I", "lanplus", "-C", "17", "chassis", "power", "status")
		if !res.OK() {
			t.Fatalf("ipmitool: %s", res)
		}
		return strings.TrimSpace(res.Stdout)
	}

	r = curl(t, auth, "--cacert", ca, "-X", "POST", "-H", "Content-Type: application/json",
		"--data", `{"ResetType": "ForceOff"}`, base+target)
	if r.status != 204 {
		t.Fatalf("ForceOff: %d %s", r.status, r.body)
	}
	if got := ipmiPower(); got != "Chassis Power is off" {
		t.Errorf("after a Redfish ForceOff ipmitool says %q", got)
	}
	r = curl(t, auth, "--cacert", ca, "-X", "POST", "-H", "Content-Type: application/json",
		"--data", `{"ResetType": "On"}`, base+target)
	if r.status != 204 {
		t.Fatalf("On: %d %s", r.status, r.body)
	}
	if got := ipmiPower(); got != "Chassis Power is on" {
		t.Errorf("after a Redfish On ipmitool says %q", got)
	}

	r = curl(t, auth, "--cacert", ca, "-X", "PATCH", "-H", "Content-Type: application/json",
		"--data", `{"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous"}}`, base+"/redfish/v1/Systems/1")
	if r.status != 204 {
		t.Fatalf("PATCH Boot: %d %s", r.status, r.body)
	}
	if fl := b.BootFlags(); fl.Device.String() != "pxe" || !fl.Valid || !fl.Persistent {
		t.Errorf("after PATCH Pxe/Continuous the boot flags are %+v", fl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if res := peertest.Ipmitool(t, ctx, tg, "-I", "lanplus", "-C", "17", "chassis", "bootparam", "get", "5"); !res.OK() ||
		!strings.Contains(res.Stdout, "Force PXE") || !strings.Contains(res.Stdout, "Options apply to all future boots") {
		t.Errorf("ipmitool bootparam get 5 after the Redfish PATCH:\n%s", res)
	}

	// A value the service does not offer: 400 with ExtendedInfo.
	r = curl(t, auth, "--cacert", ca, "-X", "POST", "-H", "Content-Type: application/json",
		"--data", `{"ResetType": "Explode"}`, base+target)
	if r.status != 400 || !strings.Contains(string(r.body), "ActionParameterValueNotInList") {
		t.Errorf("bad ResetType: %d %s", r.status, r.body)
	}

	// Unknown resources and methods get Redfish errors too.
	if r := curl(t, auth, "--cacert", ca, base+"/redfish/v1/Chassis/9"); r.status != 404 || !strings.Contains(string(r.body), "ResourceMissingAtURI") {
		t.Errorf("unknown resource: %d %s", r.status, r.body)
	}
	if r := curl(t, auth, "--cacert", ca, "-X", "DELETE", base+"/redfish/v1/Systems/1"); r.status != 405 || !strings.Contains(string(r.body), "OperationNotAllowed") || r.headers.Get("Allow") == "" {
		t.Errorf("DELETE of the system: %d %s %v", r.status, r.body, r.headers)
	}

	r = curl(t, auth, "--cacert", ca, "-X", "DELETE", base+loc)
	if r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if r := curl(t, auth, "--cacert", ca, base+"/redfish/v1/Systems/1"); r.status != 401 {
		t.Errorf("the deleted session still works: %d", r.status)
	}
	if st := b.RedfishStats(); st.Sessions != 0 || st.Logins != 1 || st.Resets["ForceOff"] != 1 || st.Resets["On"] != 1 {
		t.Errorf("stats after the flow: %+v", st)
	}

	// Without the certificate pinned, curl refuses the self-signed one
	// (exit 60: peer certificate cannot be authenticated).
	if r := curl(t, "", base+"/redfish/v1/"); r.exit != 60 {
		t.Errorf("curl without --cacert: exit %d (%s), want 60", r.exit, r.stderr)
	}
}

// TestRedfishCurlQuirks: each quirk as curl sees it.
func TestRedfishCurlQuirks(t *testing.T) {
	t.Parallel()
	basic := "user = " + curlConfigString("admin:"+rfPass) + "\n"
	patch := func(ca, base string, extra ...string) curlResult {
		args := append([]string{"--cacert", ca, "-X", "PATCH", "-H", "Content-Type: application/json"}, extra...)
		args = append(args, "--data", `{"Boot": {"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Continuous"}}`, base+"/redfish/v1/Systems/1")
		return curl(t, basic, args...)
	}

	t.Run("etag-required", func(t *testing.T) {
		t.Parallel()
		f, ca := startRedfishFleet(t, RedfishConfig{Quirks: RedfishQuirks{RedfishETagRequired: true}})
		base := f.RedfishURL(0)
		if r := patch(ca, base); r.status != 412 || !strings.Contains(string(r.body), "PreconditionFailed") {
			t.Fatalf("PATCH without If-Match: %d %s", r.status, r.body)
		}
		r := curl(t, basic, "--cacert", ca, base+"/redfish/v1/Systems/1")
		etag := r.headers.Get("ETag")
		if r := patch(ca, base, "-H", "If-Match: "+etag); r.status != 204 {
			t.Fatalf("PATCH with If-Match %s: %d %s", etag, r.status, r.body)
		}
		if r := patch(ca, base, "-H", "If-Match: "+etag); r.status != 412 {
			t.Errorf("PATCH with a stale ETag: %d", r.status)
		}
	})
	t.Run("no-continuous", func(t *testing.T) {
		t.Parallel()
		f, ca := startRedfishFleet(t, RedfishConfig{Quirks: RedfishQuirks{RedfishNoContinuous: true}})
		if r := patch(ca, f.RedfishURL(0)); r.status != 400 || !strings.Contains(string(r.body), "PropertyValueNotInList") {
			t.Fatalf("Continuous: %d %s", r.status, r.body)
		}
	})
	t.Run("no-powercycle", func(t *testing.T) {
		t.Parallel()
		f, ca := startRedfishFleet(t, RedfishConfig{Quirks: RedfishQuirks{RedfishNoPowerCycle: true}})
		r := curl(t, basic, "--cacert", ca, f.RedfishURL(0)+"/redfish/v1/Systems/1/ResetActionInfo")
		if r.status != 200 || strings.Contains(string(r.body), "PowerCycle") || !strings.Contains(string(r.body), "ForceRestart") {
			t.Fatalf("ActionInfo: %d %s", r.status, r.body)
		}
	})
	t.Run("sessions-only", func(t *testing.T) {
		t.Parallel()
		f, ca := startRedfishFleet(t, RedfishConfig{Quirks: RedfishQuirks{RedfishSessionsOnly: true}})
		if r := curl(t, basic, "--cacert", ca, f.RedfishURL(0)+"/redfish/v1/Systems"); r.status != 401 {
			t.Fatalf("Basic: %d, want 401", r.status)
		}
	})
	t.Run("no-sessions", func(t *testing.T) {
		t.Parallel()
		f, ca := startRedfishFleet(t, RedfishConfig{Quirks: RedfishQuirks{RedfishNoSessions: true}})
		r := curl(t, "", "--cacert", ca, f.RedfishURL(0)+"/redfish/v1/")
		if r.status != 200 || strings.Contains(string(r.body), "Sessions") {
			t.Fatalf("root: %d %s", r.status, r.body)
		}
		if r := curl(t, basic, "--cacert", ca, f.RedfishURL(0)+"/redfish/v1/Systems"); r.status != 200 {
			t.Fatalf("Basic: %d", r.status)
		}
	})
	t.Run("task-202", func(t *testing.T) {
		t.Parallel()
		f, ca := startRedfishFleet(t, RedfishConfig{Quirks: RedfishQuirks{RedfishTask202: true}, TaskDuration: 3 * time.Second}) // so curl returns before the task runs, even on a loaded machine
		base := f.RedfishURL(0)
		r := curl(t, basic, "--cacert", ca, "-X", "POST", "-H", "Content-Type: application/json",
			"--data", `{"ResetType": "ForceOff"}`, base+"/redfish/v1/Systems/1/Actions/ComputerSystem.Reset")
		mon := r.headers.Get("Location")
		if r.status != 202 || mon == "" || !strings.Contains(string(r.body), `"Running"`) {
			t.Fatalf("Reset: %d %q %s", r.status, mon, r.body)
		}
		if !f.BMC(0).PowerOn() {
			t.Error("the machine went off before its task ran")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.BMC(0).Sim().WaitPower(ctx, false); err != nil {
			t.Fatal(err)
		}
		if r := curl(t, basic, "--cacert", ca, base+mon); r.status != 204 {
			t.Errorf("monitor after the task: %d %s", r.status, r.body)
		}
	})
	t.Run("slow-poweron", func(t *testing.T) {
		t.Parallel()
		f, ca := startRedfishFleet(t, RedfishConfig{Quirks: RedfishQuirks{RedfishSlowPowerOn: true}, SlowPowerOn: 3 * time.Second}) // several curl starts on a loaded machine fit in it
		base := f.RedfishURL(0)
		reset := func(typ string) {
			if r := curl(t, basic, "--cacert", ca, "-X", "POST", "-H", "Content-Type: application/json",
				"--data", `{"ResetType": "`+typ+`"}`, base+"/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"); r.status != 204 {
				t.Fatalf("%s: %d %s", typ, r.status, r.body)
			}
		}
		reset("ForceOff")
		reset("On")
		if r := curl(t, basic, "--cacert", ca, base+"/redfish/v1/Systems/1"); !strings.Contains(string(r.body), `"PowerState":"PoweringOn"`) {
			t.Errorf("right after On: %s", r.body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.BMC(0).Sim().WaitPower(ctx, true); err != nil {
			t.Fatal(err)
		}
		if r := curl(t, basic, "--cacert", ca, base+"/redfish/v1/Systems/1"); !strings.Contains(string(r.body), `"PowerState":"On"`) {
			t.Errorf("after the slow power-on: %s", r.body)
		}
	})
}
