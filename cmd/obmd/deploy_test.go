package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// unitFile is the systemd unit shipped in deploy/.
const unitFile = "../../deploy/obmd.service"

// TestSystemdUnit checks deploy/obmd.service with systemd's own tools:
// systemd-analyze verify must accept it without a word (it exits 0 on
// unknown keys and bad values, only warning, so any output fails), and
// its offline security review must rate its exposure at most 2.0 of 10
// (--threshold counts tenths). It also holds the unit to obmd's settings:
// every variable it sets is one obmd reads, and no secret is written in it.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is missing; install it with: apt-get install -y systemd")
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	const execStart = "ExecStart=/usr/local/bin/obmd\n"
	if !bytes.Contains(unit, []byte(execStart)) {
		t.Fatalf("the unit does not start /usr/local/bin/obmd (README's install path)")
	}
	// verify checks that ExecStart names an executable: point it at the
	// obmd this test built.
	dir := t.TempDir()
	tested := filepath.Join(dir, "obmd.service")
	if err := os.WriteFile(tested, bytes.Replace(unit, []byte(execStart), []byte("ExecStart="+obmdBin+"\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", tested).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", tested).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security rates the unit above 2.0 (%v):\n%s", err, out)
	}

	known := map[string]bool{}
	for _, s := range settings() {
		known[s.env] = true
	}
	directives := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		directives[k] = append(directives[k], v)
	}
	for _, env := range directives["Environment"] {
		name, value, _ := strings.Cut(env, "=")
		if !known[name] {
			t.Errorf("Environment=%s: obmd reads no %s", env, name)
		}
		if (name == "ADMIN_TOKEN" || name == "METRICS_TOKEN") && value != "" {
			t.Errorf("the unit holds a secret in %s; use %s_FILE with LoadCredential=", name, name)
		}
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=obmd", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"SystemCallFilter=@system-service", "Environment=ADMIN_TOKEN_FILE=%d/admin_token", "Environment=DB_PATH=%S/obmd/db",
		"ExecReload=/bin/kill -HUP $MAINPID"} {
		k, v, _ := strings.Cut(want, "=")
		found := false
		for _, got := range directives[k] {
			found = found || got == v
		}
		if !found {
			t.Errorf("the unit lacks %s", want)
		}
	}
	if len(directives["LoadCredential"]) < 2 {
		t.Errorf("the unit loads %d credentials, want the admin and metrics tokens", len(directives["LoadCredential"]))
	}
}

// TestDockerfile: no Docker engine runs here, so the image cannot be built
// in tests; this holds the Dockerfile to what makes it right: a
// multi-stage build through make build (static, CGO_ENABLED=0, stamped
// version), a distroless static base with CA certificates, a non-root
// user, and no secret baked in.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) != 2 {
		t.Fatalf("%d FROM lines, want a build stage and a runtime stage", len(froms))
	}
	if !strings.HasPrefix(froms[0][1], "golang:1.26") {
		t.Errorf("build stage %s, want golang:1.26 (go.mod's Go)", froms[0][1])
	}
	if !strings.HasPrefix(froms[1][1], "gcr.io/distroless/static") || !strings.HasSuffix(froms[1][1], ":nonroot") {
		t.Errorf("runtime stage %s, want distroless/static:nonroot (CA certificates, no shell, non-root)", froms[1][1])
	}
	for _, want := range []string{"CGO_ENABLED=0", "make build", "USER nonroot", `ENTRYPOINT ["/usr/local/bin/obmd"]`, "COPY --from=build"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, secret := range []string{"ADMIN_TOKEN=", "METRICS_TOKEN="} {
		if strings.Contains(df, secret) {
			t.Errorf("Dockerfile sets %s: secrets come at run time (%sFILE)", secret, strings.TrimSuffix(secret, "="))
		}
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin/"} {
		if !strings.Contains(string(ignore), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}
