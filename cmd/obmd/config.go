package main

import (
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"obmd/manager"
	"obmd/store"
)

// config is obmd's whole configuration: the original obmd's environment
// variables (Contract: daemon configuration) plus a few tuning knobs, each
// also settable by a flag of the same meaning, the flag winning.
type config struct {
	ListenAddr    string
	AdminToken    string
	TLSCert       string
	TLSKey        string
	Insecure      bool
	DBPath        string
	DBType        string
	OpTimeout     time.Duration
	ConsoleLinger time.Duration
	LogFormat     string
	LogLevel      slog.Level
	// MetricsToken is the scrape credential for /metrics on LISTEN_ADDR;
	// MetricsAddr, if set, serves /metrics without authentication on a
	// listener of its own (loopback unless INSECURE).
	MetricsToken string
	MetricsAddr  string
	// ConsoleLogDir, if set, keeps every console open and logged there.
	ConsoleLogDir      string
	ConsoleLogMaxBytes int64
	ConsoleLogKeep     int
	// Cluster is set with DB_TYPE=etcd (config_cluster.go).
	Cluster *clusterConfig

	tlsCert *tls.Certificate // loaded from TLSCert and TLSKey during validation
}

func (c *config) useTLS() bool { return c.tlsCert != nil }

// setting is one variable: its environment name, flag name and help.
type setting struct {
	env, flag, usage string
	boolean          bool
	value            string // raw text from the flag, else the environment
	fromFlag         bool
}

func (s *setting) String() string { return s.value }
func (s *setting) Set(v string) error {
	s.value, s.fromFlag = v, true
	return nil
}

// IsBoolFlag lets "-insecure" stand for "-insecure=true".
func (s *setting) IsBoolFlag() bool { return s.boolean }

func settings() []*setting {
	return append([]*setting{
		{env: "LISTEN_ADDR", flag: "listen-addr", usage: "`host:port` to serve the API on; plaintext HTTP only on a loopback address unless INSECURE (port 0 picks a free port)"},
		{env: "ADMIN_TOKEN", flag: "admin-token", usage: "admin password (`token`): 32 hex digits (obmd -gen-token makes one). Discouraged as a flag: other users can read it in the process list; use the environment or ADMIN_TOKEN_FILE"},
		{env: "ADMIN_TOKEN_FILE", flag: "admin-token-file", usage: "`file` holding ADMIN_TOKEN (for systemd's LoadCredential= or a container secret); set it or ADMIN_TOKEN, not both"},
		{env: "TLS_CERT", flag: "tls-cert", usage: "TLS certificate `file` (PEM); with TLS_KEY, serve HTTPS"},
		{env: "TLS_KEY", flag: "tls-key", usage: "TLS private key `file` (PEM)"},
		{env: "INSECURE", flag: "insecure", boolean: true, usage: "allow plaintext HTTP on a non-loopback address"},
		{env: "DB_PATH", flag: "db-path", usage: "Badger database `directory` (created if missing), or :memory:"},
		{env: "DB_TYPE", flag: "db-type", usage: "database `type`: empty or badger (one instance, nodes in DB_PATH), or etcd (a cluster of instances sharing the nodes in etcd)"},
		{env: "OP_TIMEOUT", flag: "op-timeout", usage: "`duration` a BMC has to answer one operation (default 10s)"},
		{env: "CONSOLE_LINGER", flag: "console-linger", usage: "`duration` a console stays open after its last viewer leaves (default 30s)"},
		{env: "LOG_FORMAT", flag: "log-format", usage: "log `format`: text (default) or json"},
		{env: "LOG_LEVEL", flag: "log-level", usage: "least important log `level` shown: debug, info (default), warn or error"},
		{env: "METRICS_TOKEN", flag: "metrics-token", usage: "scrape credential (`token`, 32 hex digits) for GET /metrics: a bearer token, or the password of user \"metrics\". Discouraged as a flag; use the environment or METRICS_TOKEN_FILE"},
		{env: "METRICS_TOKEN_FILE", flag: "metrics-token-file", usage: "`file` holding METRICS_TOKEN; set it or METRICS_TOKEN, not both"},
		{env: "CONSOLE_LOG_DIR", flag: "console-log-dir", usage: "`directory` for console logs: when set, every node's console is kept open and written there, one directory per node, one file per tenancy (created 0700)"},
		{env: "CONSOLE_LOG_MAX_BYTES", flag: "console-log-max-bytes", usage: "`bytes` a console log file may hold before the next one starts (default 4194304, at least 4096)"},
		{env: "CONSOLE_LOG_KEEP", flag: "console-log-keep", usage: "`number` of console log files kept per node, the current one included (default 4)"},
		{env: "METRICS_ADDR", flag: "metrics-addr", usage: "`host:port` serving GET /metrics without authentication; a bare :port means 127.0.0.1, and a non-loopback host needs INSECURE"},
	}, clusterSettings()...)
}

// errHelp means -help was asked for: usage printed, exit 0.
var errHelp = errors.New("help requested")

// errUsage means the command line did not parse: usage printed, exit 2.
var errUsage = errors.New("bad command line")

// loadConfig reads the flags in args and the environment through getenv and
// validates everything in one place. A *multierror.Error lists every
// problem, one per field. genToken reports -gen-token.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (cfg config, action string, err error) {
	fs := flag.NewFlagSet("obmd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := settings()
	for _, s := range all {
		fs.Var(s, s.flag, s.usage+" [$"+s.env+"]")
	}
	gen := fs.Bool("gen-token", false, "print a fresh random 128-bit token (for ADMIN_TOKEN or METRICS_TOKEN) and exit")
	version := fs.Bool("version", false, "print obmd's version, VCS revision and Go version, and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: obmd [flags]\n\n"+
			"obmd serves HIL's out-of-band management API (power, boot device, serial console)\n"+
			"for IPMI BMCs. Every setting comes from the environment variable named in\n"+
			"brackets or from its flag; the flag wins.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, "", errHelp
		}
		return config{}, "", errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "obmd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return config{}, "", errUsage
	}
	switch {
	case *version:
		return config{}, actionVersion, nil
	case *gen:
		return config{}, actionGenToken, nil
	}
	raw := make(map[string]string, len(all))
	for _, s := range all {
		if !s.fromFlag {
			s.value = getenv(s.env)
		}
		raw[s.env] = strings.TrimSpace(s.value)
	}
	cfg, err = validate(raw)
	return cfg, "", err
}

// What loadConfig asks run to do instead of serving.
const (
	actionGenToken = "gen-token"
	actionVersion  = "version"
)

// validate turns raw settings into a config, collecting every problem.
func validate(raw map[string]string) (config, error) {
	var errs *multierror.Error
	bad := func(format string, args ...any) {
		errs = multierror.Append(errs, fmt.Errorf(format, args...))
	}
	cfg := config{
		ListenAddr:  raw["LISTEN_ADDR"],
		AdminToken:  fromFile(raw, "ADMIN_TOKEN", bad),
		MetricsAddr: raw["METRICS_ADDR"],
		TLSCert:     raw["TLS_CERT"],
		TLSKey:      raw["TLS_KEY"],
		DBPath:      raw["DB_PATH"],
		DBType:      raw["DB_TYPE"],
		LogFormat:   raw["LOG_FORMAT"],
	}

	var host string
	addrOK := false
	switch h, port, err := net.SplitHostPort(cfg.ListenAddr); {
	case cfg.ListenAddr == "":
		bad("LISTEN_ADDR is not set; give the host:port to listen on, e.g. 127.0.0.1:8080")
	case err != nil:
		bad("LISTEN_ADDR %q is not host:port: %v", cfg.ListenAddr, strings.TrimPrefix(err.Error(), "address "+cfg.ListenAddr+": "))
	default:
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("LISTEN_ADDR %q: port %q is not a number from 0 to 65535", cfg.ListenAddr, port)
		} else {
			host, addrOK = h, true
		}
	}

	switch {
	case cfg.AdminToken == "" && raw["ADMIN_TOKEN_FILE"] == "":
		bad("ADMIN_TOKEN is not set; it must be 32 hex digits (128 bits); generate one with obmd -gen-token")
	case cfg.AdminToken == "":
		// fromFile said why
	case len(cfg.AdminToken) != 32 || !isHex(cfg.AdminToken):
		bad("ADMIN_TOKEN%s must be 32 hex digits (128 bits); generate one with obmd -gen-token", fileNote(raw, "ADMIN_TOKEN"))
	}

	cfg.MetricsToken = fromFile(raw, "METRICS_TOKEN", bad)
	switch {
	case cfg.MetricsToken == "":
	case len(cfg.MetricsToken) != 32 || !isHex(cfg.MetricsToken):
		bad("METRICS_TOKEN%s must be 32 hex digits (128 bits); generate one with obmd -gen-token", fileNote(raw, "METRICS_TOKEN"))
	case strings.EqualFold(cfg.MetricsToken, cfg.AdminToken):
		bad("METRICS_TOKEN is the same as ADMIN_TOKEN; the scrape credential must not be the one that can delete nodes: generate another with obmd -gen-token")
	}

	if v := raw["INSECURE"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("INSECURE %q is not true or false", v)
		}
		cfg.Insecure = b
	}

	switch {
	case cfg.TLSCert != "" && cfg.TLSKey == "":
		bad("TLS_KEY is not set but TLS_CERT is; set both (HTTPS) or neither")
	case cfg.TLSKey != "" && cfg.TLSCert == "":
		bad("TLS_CERT is not set but TLS_KEY is; set both (HTTPS) or neither")
	case cfg.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			bad("TLS_CERT/TLS_KEY: cannot load the key pair: %v", err)
		} else {
			cfg.tlsCert = &cert
		}
	}
	tlsWanted := cfg.TLSCert != "" || cfg.TLSKey != ""
	if addrOK && !tlsWanted && !cfg.Insecure && !isLoopback(host) {
		hint := ""
		if host == "localhost" {
			hint = " (\"localhost\" is a name, not an address: use 127.0.0.1 or ::1)"
		}
		bad("LISTEN_ADDR %q is not a loopback address%s: serving plaintext HTTP there needs INSECURE=true, or set TLS_CERT and TLS_KEY", cfg.ListenAddr, hint)
	}

	if cfg.DBType != "etcd" && cfg.DBPath == "" {
		bad("DB_PATH is not set; give the Badger database directory, or %s for an in-memory store", store.InMemory)
	}
	switch cfg.DBType {
	case "etcd":
		if cfg.DBPath != "" {
			bad("DB_PATH is set but DB_TYPE is etcd, which keeps the nodes in etcd; unset DB_PATH")
		}
	case "", "badger":
	default:
		bad("DB_TYPE %q is not supported: leave it empty or set it to badger (one instance, nodes in DB_PATH), or set it to etcd (a cluster sharing its nodes in etcd)", cfg.DBType)
	}
	cfg.Cluster = validateCluster(raw, cfg.DBType == "etcd", cfg.AdminToken, tlsWanted, bad)

	cfg.OpTimeout = manager.DefaultOpTimeout
	if v := raw["OP_TIMEOUT"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("OP_TIMEOUT %q is not a positive duration such as 10s", v)
		}
		cfg.OpTimeout = d
	}
	cfg.ConsoleLinger = 30 * time.Second
	if v := raw["CONSOLE_LINGER"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad("CONSOLE_LINGER %q is not a duration such as 30s", v)
		}
		cfg.ConsoleLinger = d
	}

	switch cfg.LogFormat {
	case "":
		cfg.LogFormat = "text"
	case "text", "json":
	default:
		bad("LOG_FORMAT %q is not text or json", cfg.LogFormat)
	}
	switch v := strings.ToLower(raw["LOG_LEVEL"]); v {
	case "", "info":
		cfg.LogLevel = slog.LevelInfo
	case "debug":
		cfg.LogLevel = slog.LevelDebug
	case "warn", "warning":
		cfg.LogLevel = slog.LevelWarn
	case "error":
		cfg.LogLevel = slog.LevelError
	default:
		bad("LOG_LEVEL %q is not debug, info, warn or error", raw["LOG_LEVEL"])
	}

	cfg.ConsoleLogDir = raw["CONSOLE_LOG_DIR"]
	cfg.ConsoleLogMaxBytes = manager.DefaultConsoleLogMaxBytes
	if v := raw["CONSOLE_LOG_MAX_BYTES"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < minConsoleLogBytes {
			bad("CONSOLE_LOG_MAX_BYTES %q is not a number of bytes of at least %d", v, minConsoleLogBytes)
		}
		cfg.ConsoleLogMaxBytes = n
	}
	cfg.ConsoleLogKeep = manager.DefaultConsoleLogKeep
	if v := raw["CONSOLE_LOG_KEEP"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("CONSOLE_LOG_KEEP %q is not a number of files (1 or more)", v)
		}
		cfg.ConsoleLogKeep = n
	}
	if cfg.ConsoleLogDir == "" && (raw["CONSOLE_LOG_MAX_BYTES"] != "" || raw["CONSOLE_LOG_KEEP"] != "") {
		bad("CONSOLE_LOG_MAX_BYTES and CONSOLE_LOG_KEEP need CONSOLE_LOG_DIR: set the directory to keep console logs")
	}

	if cfg.MetricsAddr != "" {
		h, port, err := net.SplitHostPort(cfg.MetricsAddr)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil:
			bad("METRICS_ADDR %q is not host:port or :port", cfg.MetricsAddr)
		case perr != nil || n < 0 || n > 65535:
			bad("METRICS_ADDR %q: port %q is not a number from 0 to 65535", cfg.MetricsAddr, port)
		case h == "":
			// Metrics without authentication stay on this host unless
			// asked otherwise.
			cfg.MetricsAddr = net.JoinHostPort("127.0.0.1", port)
		case !cfg.Insecure && !isLoopback(h):
			bad("METRICS_ADDR %q is not a loopback address: /metrics there has no authentication, so a non-loopback address needs INSECURE=true; or scrape LISTEN_ADDR with METRICS_TOKEN", cfg.MetricsAddr)
		}
	}
	return cfg, errs.ErrorOrNil()
}

// minConsoleLogBytes is the smallest CONSOLE_LOG_MAX_BYTES: room for lines.
const minConsoleLogBytes = 4096

// maxSecretFileBytes bounds a *_FILE: a token is 32 characters.
const maxSecretFileBytes = 4096

// fromFile returns the setting name, read from the file NAME_FILE names
// when that is set (surrounding whitespace trimmed: editors and echo add a
// newline). Setting both is a problem reported through bad, as is a file
// that cannot be read.
func fromFile(raw map[string]string, name string, bad func(string, ...any)) string {
	path := raw[name+"_FILE"]
	if path == "" {
		return raw[name]
	}
	if raw[name] != "" {
		bad("%s and %s_FILE are both set; set one", name, name)
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		bad("%s_FILE: %v", name, err)
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	switch {
	case err != nil:
		bad("%s_FILE %s: %v", name, path, err)
		return ""
	case len(b) > maxSecretFileBytes:
		bad("%s_FILE %s is larger than %d bytes; it should hold only the token", name, path, maxSecretFileBytes)
		return ""
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		bad("%s_FILE %s is empty", name, path)
	}
	return v
}

// fileNote names where a bad secret came from, without its value.
func fileNote(raw map[string]string, name string) string {
	if p := raw[name+"_FILE"]; p != "" {
		return " (from " + name + "_FILE " + p + ")"
	}
	return ""
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// isLoopback reports whether host is a loopback IP literal (127.0.0.0/8 or
// ::1). Names, including "localhost", are not trusted to resolve there.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// configErrorLines renders a validation error as one line per problem.
func configErrorLines(err error) []string {
	var merr *multierror.Error
	if errors.As(err, &merr) {
		lines := make([]string, len(merr.Errors))
		for i, e := range merr.Errors {
			lines[i] = "obmd: " + e.Error()
		}
		return lines
	}
	return []string{"obmd: " + err.Error()}
}
