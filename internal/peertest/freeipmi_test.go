package peertest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"obmd/fakebmc"
	"obmd/internal/peertest"
)

// ipmi_sim does not answer FreeIPMI (see testdata/captures/README.md), so
// the FreeIPMI runner is proven against fakebmc: the password reaches
// ipmipower through the config file, or the session would fail.
func TestIpmipowerConfigFileCarriesCredentials(t *testing.T) {
	t.Parallel()
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{Users: []fakebmc.User{{Name: "admin", Password: []byte("secret")}}, StartOn: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tg := peertest.Target{Port: f.BMC(0).Addr().Port, Username: "admin", Password: "secret"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := peertest.Ipmipower(t, ctx, tg, "-I", "3", "--stat")
	if !r.OK() || !strings.Contains(r.Stdout, ": on") {
		t.Fatalf("ipmipower --stat with the right password:\n%s", r)
	}
	for _, a := range r.Args {
		if strings.Contains(a, tg.Password) {
			t.Fatalf("password in argv: %q", r.Args)
		}
	}
	tg.Password = "wrong"
	r = peertest.Ipmipower(t, ctx, tg, "-I", "3", "--stat", "--session-timeout=3000")
	if !strings.Contains(r.Stdout+r.Stderr, "password invalid") {
		t.Fatalf("ipmipower --stat with a wrong password did not say so:\n%s", r)
	}
}
