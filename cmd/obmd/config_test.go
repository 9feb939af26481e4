package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodToken = "0123456789abcdef0123456789abcdef"

// otherToken is a second valid token (METRICS_TOKEN in tests).
const otherToken = "fedcba9876543210fedcba9876543210"

// writeSecretFiles writes token files for the *_FILE cases: good (a token
// and a newline, as echo writes it), empty, huge, and a missing one.
func writeSecretFiles(t *testing.T) map[string]string {
	dir := t.TempDir()
	files := map[string]string{
		"admin":   goodToken + "\n",
		"metrics": "  " + otherToken + "\n",
		"empty":   "\n",
		"huge":    strings.Repeat("a", 5000),
	}
	out := map[string]string{"missing": filepath.Join(dir, "missing")}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	return out
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func goodEnv() map[string]string {
	return map[string]string{"LISTEN_ADDR": "127.0.0.1:8080", "ADMIN_TOKEN": goodToken, "DB_PATH": ":memory:"}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	secretFiles := writeSecretFiles(t)
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c config)
	}{
		{"environment only", goodEnv(), nil, func(t *testing.T, c config) {
			if c.ListenAddr != "127.0.0.1:8080" || c.AdminToken != goodToken || c.DBPath != ":memory:" ||
				c.OpTimeout != 10*time.Second || c.ConsoleLinger != 30*time.Second || c.LogFormat != "text" || c.Insecure {
				t.Errorf("got %+v", c)
			}
		}},
		{"flags win over the environment", goodEnv(),
			[]string{"-listen-addr", "[::1]:9000", "-db-path", "/var/lib/obmd", "-op-timeout", "3s", "-log-format", "json", "-db-type", "badger"},
			func(t *testing.T, c config) {
				if c.ListenAddr != "[::1]:9000" || c.DBPath != "/var/lib/obmd" || c.OpTimeout != 3*time.Second || c.LogFormat != "json" {
					t.Errorf("got %+v", c)
				}
			}},
		{"a good flag fixes a bad variable", map[string]string{"LISTEN_ADDR": "127.0.0.1:1", "ADMIN_TOKEN": "bad", "DB_PATH": "x"},
			[]string{"-admin-token=" + goodToken}, func(t *testing.T, c config) {
				if c.AdminToken != goodToken {
					t.Errorf("got %+v", c)
				}
			}},
		{"bare -insecure allows any address", map[string]string{"LISTEN_ADDR": "0.0.0.0:8080", "ADMIN_TOKEN": goodToken, "DB_PATH": "x"},
			[]string{"-insecure"}, func(t *testing.T, c config) {
				if !c.Insecure {
					t.Errorf("got %+v", c)
				}
			}},
		{"INSECURE=true in the environment", map[string]string{"LISTEN_ADDR": ":8080", "ADMIN_TOKEN": goodToken, "DB_PATH": "x", "INSECURE": "true"},
			nil, func(t *testing.T, c config) {
				if !c.Insecure {
					t.Errorf("got %+v", c)
				}
			}},
		{"uppercase token", map[string]string{"LISTEN_ADDR": "127.0.0.2:1", "ADMIN_TOKEN": strings.ToUpper(goodToken), "DB_PATH": "x"},
			nil, func(t *testing.T, c config) {}},
		{"console linger 0", map[string]string{"LISTEN_ADDR": "127.0.0.1:1", "ADMIN_TOKEN": goodToken, "DB_PATH": "x", "CONSOLE_LINGER": "0s"},
			nil, func(t *testing.T, c config) {
				if c.ConsoleLinger != 0 || lingerSetting(c.ConsoleLinger) >= 0 {
					t.Errorf("linger %v maps to %v", c.ConsoleLinger, lingerSetting(c.ConsoleLinger))
				}
			}},
		{"defaults of the service settings", goodEnv(), nil, func(t *testing.T, c config) {
			if c.LogLevel != slog.LevelInfo || c.MetricsToken != "" || c.MetricsAddr != "" {
				t.Errorf("got %+v", c)
			}
		}},
		{"tokens from files", map[string]string{"LISTEN_ADDR": "127.0.0.1:1", "DB_PATH": "x",
			"ADMIN_TOKEN_FILE": secretFiles["admin"], "METRICS_TOKEN_FILE": secretFiles["metrics"]},
			nil, func(t *testing.T, c config) {
				if c.AdminToken != goodToken || c.MetricsToken != otherToken {
					t.Errorf("tokens read from files: %q, %q", c.AdminToken, c.MetricsToken)
				}
			}},
		{"log level and metrics settings", with(goodEnv(), map[string]string{"LOG_LEVEL": "DEBUG", "METRICS_TOKEN": otherToken, "METRICS_ADDR": ":9101"}),
			nil, func(t *testing.T, c config) {
				if c.LogLevel != slog.LevelDebug || c.MetricsToken != otherToken || c.MetricsAddr != "127.0.0.1:9101" {
					t.Errorf("got %+v", c)
				}
			}},
		{"metrics on all interfaces with INSECURE", with(goodEnv(), map[string]string{"METRICS_ADDR": "0.0.0.0:9101", "INSECURE": "true"}),
			nil, func(t *testing.T, c config) {
				if c.MetricsAddr != "0.0.0.0:9101" {
					t.Errorf("got %+v", c)
				}
			}},
		{"console logs", with(goodEnv(), map[string]string{"CONSOLE_LOG_DIR": "/var/log/obmd", "CONSOLE_LOG_MAX_BYTES": "65536", "CONSOLE_LOG_KEEP": "9"}),
			nil, func(t *testing.T, c config) {
				if c.ConsoleLogDir != "/var/log/obmd" || c.ConsoleLogMaxBytes != 65536 || c.ConsoleLogKeep != 9 {
					t.Errorf("got %+v", c)
				}
			}},
		{"log level warn by flag", goodEnv(), []string{"-log-level", "warn"}, func(t *testing.T, c config) {
			if c.LogLevel != slog.LevelWarn {
				t.Errorf("got %v", c.LogLevel)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, action, err := loadConfig(tc.args, envOf(tc.env), io.Discard)
			if err != nil || action != "" {
				t.Fatalf("loadConfig: %v (action %q)", err, action)
			}
			tc.check(t, c)
		})
	}
}

// with returns env with changes applied; an empty value removes a variable.
func with(env map[string]string, changes map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// TestConfigErrors: every problem is reported, one line each, naming the
// variable.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	secretFiles := writeSecretFiles(t)
	with := func(changes map[string]string) map[string]string { return with(goodEnv(), changes) }
	cases := []struct {
		name string
		env  map[string]string
		want []string // one entry per expected line, each a substring
	}{
		{"short token", with(map[string]string{"ADMIN_TOKEN": "abc"}),
			[]string{"obmd: ADMIN_TOKEN must be 32 hex digits (128 bits); generate one with obmd -gen-token"}},
		{"token not hex", with(map[string]string{"ADMIN_TOKEN": strings.Repeat("g", 32)}), []string{"ADMIN_TOKEN must be 32 hex digits"}},
		{"missing token", with(map[string]string{"ADMIN_TOKEN": ""}), []string{"ADMIN_TOKEN is not set"}},
		{"missing listen address", with(map[string]string{"LISTEN_ADDR": ""}), []string{"LISTEN_ADDR is not set"}},
		{"listen address without port", with(map[string]string{"LISTEN_ADDR": "127.0.0.1"}), []string{"LISTEN_ADDR \"127.0.0.1\" is not host:port"}},
		{"listen port out of range", with(map[string]string{"LISTEN_ADDR": "127.0.0.1:99999"}), []string{"LISTEN_ADDR \"127.0.0.1:99999\": port"}},
		{"plaintext on all interfaces", with(map[string]string{"LISTEN_ADDR": ":8080"}), []string{"LISTEN_ADDR \":8080\" is not a loopback address: serving plaintext HTTP there needs INSECURE=true"}},
		{"plaintext on localhost name", with(map[string]string{"LISTEN_ADDR": "localhost:8080"}), []string{"\"localhost\" is a name"}},
		{"insecure not a bool", with(map[string]string{"INSECURE": "maybe"}), []string{"INSECURE \"maybe\" is not true or false"}},
		{"cert without key", with(map[string]string{"TLS_CERT": "/x.pem"}), []string{"TLS_KEY is not set but TLS_CERT is"}},
		{"key without cert", with(map[string]string{"TLS_KEY": "/x.key"}), []string{"TLS_CERT is not set but TLS_KEY is"}},
		{"unreadable key pair", with(map[string]string{"TLS_CERT": "/nonexistent.pem", "TLS_KEY": "/nonexistent.key"}), []string{"TLS_CERT/TLS_KEY: cannot load the key pair"}},
		{"missing db path", with(map[string]string{"DB_PATH": ""}), []string{"DB_PATH is not set"}},
		{"postgres", with(map[string]string{"DB_TYPE": "postgres"}), []string{"DB_TYPE \"postgres\" is not supported"}},
		{"bad timeout", with(map[string]string{"OP_TIMEOUT": "-1s"}), []string{"OP_TIMEOUT \"-1s\""}},
		{"bad log format", with(map[string]string{"LOG_FORMAT": "xml"}), []string{"LOG_FORMAT \"xml\""}},
		{"bad log level", with(map[string]string{"LOG_LEVEL": "verbose"}), []string{"LOG_LEVEL \"verbose\" is not debug, info, warn or error"}},
		{"token and token file", with(map[string]string{"ADMIN_TOKEN_FILE": secretFiles["admin"]}), []string{"ADMIN_TOKEN and ADMIN_TOKEN_FILE are both set; set one"}},
		{"missing token file", with(map[string]string{"ADMIN_TOKEN": "", "ADMIN_TOKEN_FILE": secretFiles["missing"]}), []string{"ADMIN_TOKEN_FILE: open " + secretFiles["missing"]}},
		{"empty token file", with(map[string]string{"ADMIN_TOKEN": "", "ADMIN_TOKEN_FILE": secretFiles["empty"]}), []string{"ADMIN_TOKEN_FILE " + secretFiles["empty"] + " is empty"}},
		{"huge token file", with(map[string]string{"METRICS_TOKEN_FILE": secretFiles["huge"]}), []string{"METRICS_TOKEN_FILE " + secretFiles["huge"] + " is larger than 4096 bytes"}},
		{"bad metrics token", with(map[string]string{"METRICS_TOKEN": "hunter2"}), []string{"METRICS_TOKEN must be 32 hex digits"}},
		{"bad metrics token in a file", with(map[string]string{"ADMIN_TOKEN": otherToken, "METRICS_TOKEN_FILE": secretFiles["admin"] + "x"}), []string{"METRICS_TOKEN_FILE: open"}},
		{"metrics token is the admin's", with(map[string]string{"METRICS_TOKEN": strings.ToUpper(goodToken)}), []string{"METRICS_TOKEN is the same as ADMIN_TOKEN"}},
		{"metrics address without port", with(map[string]string{"METRICS_ADDR": "127.0.0.1"}), []string{"METRICS_ADDR \"127.0.0.1\" is not host:port or :port"}},
		{"metrics address bad port", with(map[string]string{"METRICS_ADDR": ":http"}), []string{"METRICS_ADDR \":http\": port"}},
		{"open metrics off loopback", with(map[string]string{"METRICS_ADDR": "0.0.0.0:9101"}), []string{"METRICS_ADDR \"0.0.0.0:9101\" is not a loopback address"}},
		{"console log file too small", with(map[string]string{"CONSOLE_LOG_DIR": "/x", "CONSOLE_LOG_MAX_BYTES": "100"}), []string{"CONSOLE_LOG_MAX_BYTES \"100\" is not a number of bytes of at least 4096"}},
		{"console log keep zero", with(map[string]string{"CONSOLE_LOG_DIR": "/x", "CONSOLE_LOG_KEEP": "0"}), []string{"CONSOLE_LOG_KEEP \"0\" is not a number of files"}},
		{"console log size without a directory", with(map[string]string{"CONSOLE_LOG_KEEP": "3"}), []string{"CONSOLE_LOG_MAX_BYTES and CONSOLE_LOG_KEEP need CONSOLE_LOG_DIR"}},
		{"everything wrong at once", map[string]string{"ADMIN_TOKEN": "x", "DB_TYPE": "sqlite3", "LISTEN_ADDR": "nope"},
			[]string{"LISTEN_ADDR", "ADMIN_TOKEN", "DB_PATH", "DB_TYPE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadConfig(nil, envOf(tc.env), io.Discard)
			if err == nil {
				t.Fatal("loadConfig accepted the configuration")
			}
			lines := configErrorLines(err)
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.want), strings.Join(lines, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) || strings.Contains(lines[i], "\n") {
					t.Errorf("line %q does not contain %q", lines[i], w)
				}
				if !strings.HasPrefix(lines[i], "obmd: ") {
					t.Errorf("line %q lacks the obmd: prefix", lines[i])
				}
			}
		})
	}
}

func TestGenTokenFlag(t *testing.T) {
	t.Parallel()
	var out, errOut strings.Builder
	if rc := run([]string{"-gen-token"}, envOf(nil), &out, &errOut); rc != 0 {
		t.Fatalf("obmd -gen-token exited %d: %s", rc, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	if len(tok) != 32 || !isHex(tok) {
		t.Fatalf("-gen-token printed %q", tok)
	}
	out.Reset()
	run([]string{"-gen-token"}, envOf(nil), &out, &errOut)
	if strings.TrimSpace(out.String()) == tok {
		t.Fatal("two -gen-token runs printed the same token")
	}
}

func TestBadCommandLine(t *testing.T) {
	t.Parallel()
	var errOut strings.Builder
	if rc := run([]string{"-no-such-flag"}, envOf(goodEnv()), io.Discard, &errOut); rc != 2 {
		t.Errorf("unknown flag exited %d, want 2", rc)
	}
	if rc := run([]string{"extra"}, envOf(goodEnv()), io.Discard, &errOut); rc != 2 {
		t.Errorf("stray argument exited %d, want 2", rc)
	}
	if rc := run([]string{"-help"}, envOf(nil), io.Discard, &errOut); rc != 0 {
		t.Errorf("-help exited %d, want 0", rc)
	}
	if !strings.Contains(errOut.String(), "process list") {
		t.Error("-help does not warn that -admin-token shows in the process list")
	}
}
