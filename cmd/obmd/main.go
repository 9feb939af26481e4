// Command obmd is the out-of-band management daemon: it serves HIL's REST
// API (power, boot device, serial console) for the nodes registered with it,
// keeping them in a Badger database.
//
// Configuration comes from the environment (LISTEN_ADDR, ADMIN_TOKEN,
// TLS_CERT, TLS_KEY, INSECURE, DB_PATH, DB_TYPE, ...) or from flags of the
// same meaning; see obmd -help. obmd -gen-token prints a fresh admin token,
// obmd -version says which obmd this is. SIGTERM or SIGINT shut it down
// gracefully within 5 seconds; SIGHUP re-reads TLS_CERT and TLS_KEY.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"obmd/api"
	"obmd/internal/buildinfo"
	"obmd/manager"
	"obmd/metrics"
)

// shutdownGrace bounds a graceful shutdown.
const shutdownGrace = 5 * time.Second

func main() {
	if len(os.Args) > 1 {
		if sub, ok := subcommands[os.Args[1]]; ok {
			os.Exit(sub(os.Args[2:], commandEnv{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
		}
	}
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// commandEnv is what a subcommand gets from the process.
type commandEnv struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// subcommands are the tools that share obmd's binary ("obmd console URL",
// "obmd probe -addr ..."), each returning its exit status. Each file that
// implements one adds it with registerSubcommand; a first argument that
// names none starts the daemon.
var subcommands = map[string]func(args []string, env commandEnv) int{}

func registerSubcommand(name string, f func(args []string, env commandEnv) int) {
	if _, dup := subcommands[name]; dup {
		panic("obmd: subcommand " + name + " registered twice")
	}
	subcommands[name] = f
}

// run is obmd's main, returning its exit status: 0 after a clean shutdown,
// 2 for a configuration error, 1 for a failure at run time.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return runWith(args, getenv, stdout, stderr, serve)
}

// serveFunc is serve's signature; tests stand in for it to see how run
// reports what it returns.
type serveFunc func(ctx context.Context, cfg config, log *slog.Logger, hup <-chan os.Signal) error

func runWith(args []string, getenv func(string) string, stdout, stderr io.Writer, serve serveFunc) int {
	cfg, action, err := loadConfig(args, getenv, stderr)
	switch {
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		for _, line := range configErrorLines(err) {
			fmt.Fprintln(stderr, line)
		}
		return 2
	case action == actionVersion:
		fmt.Fprintln(stdout, buildinfo.Get())
		return 0
	case action == actionGenToken:
		var tok [16]byte
		if _, err := rand.Read(tok[:]); err != nil {
			fmt.Fprintf(stderr, "obmd: reading random bytes: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, hex.EncodeToString(tok[:]))
		return 0
	}

	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP's default action ends the process: take it over at once, for
	// a certificate reload (or a logged no-op without TLS).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := serve(ctx, cfg, log, hup); err != nil {
		var se *startupError
		if errors.As(err, &se) {
			// Nothing is running yet: one line saying what to fix.
			fmt.Fprintf(stderr, "obmd: %v\n", se.err)
			return se.code
		}
		// One line, in the log's format (no plain-text copy: in JSON mode
		// that would be a line no log shipper can parse).
		log.Error("obmd stopped", "err", err)
		return 1
	}
	return 0
}

// startupError is a failure before obmd serves anything: reported as one
// line, with exit status code (2 for a setting to fix, 1 otherwise).
type startupError struct {
	err  error
	code int
}

func (e *startupError) Error() string { return e.err.Error() }
func (e *startupError) Unwrap() error { return e.err }

// serve runs the daemon until ctx is done, then shuts down: stop accepting,
// end console streams, let requests in flight finish, close drivers and
// their BMC sessions, close the store, all within shutdownGrace.
func serve(ctx context.Context, cfg config, log *slog.Logger, hup <-chan os.Signal) error {
	// Every file obmd creates (the database holds BMC passwords) is for
	// its own user only.
	syscall.Umask(0o077)
	be, err := openBackend(ctx, cfg, log)
	if err != nil {
		return err
	}
	var consoleLog *manager.ConsoleLogConfig
	if cfg.ConsoleLogDir != "" {
		if err := privateDir(cfg.ConsoleLogDir, log); err != nil {
			be.close(context.Background())
			return &startupError{fmt.Errorf("CONSOLE_LOG_DIR %s: %w", cfg.ConsoleLogDir, err), 2}
		}
		consoleLog = &manager.ConsoleLogConfig{Dir: cfg.ConsoleLogDir, MaxBytes: cfg.ConsoleLogMaxBytes, Keep: cfg.ConsoleLogKeep}
	}
	build := buildinfo.Get()
	mt := metrics.New(build)
	m, err := manager.New(manager.Config{
		Store:      be.store,
		Refresh:    be.refresh,
		Drivers:    be.drivers,
		Logger:     log,
		OpTimeout:  cfg.OpTimeout,
		Console:    manager.HubConfig{Linger: lingerSetting(cfg.ConsoleLinger)},
		Observe:    mt.ObserveOperation,
		ConsoleLog: consoleLog,
	})
	if err != nil {
		be.close(context.Background())
		return err
	}
	mt.CollectManager(m)
	be.collect(mt)

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		m.Close(context.Background())
		be.close(context.Background())
		return &startupError{fmt.Errorf("cannot listen on LISTEN_ADDR %s: %w", cfg.ListenAddr, err), 1}
	}
	var metricsSrv *http.Server
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			m.Close(context.Background())
			be.close(context.Background())
			return &startupError{fmt.Errorf("cannot listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err), 1}
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", mt.Handler(log))
		metricsSrv = &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readHeaderTimeout,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}

	// /readyz: the listener serves from here until shutdown begins.
	var serving atomic.Bool
	listenerReady := func(context.Context) error {
		if !serving.Load() {
			return errors.New("obmd is starting or shutting down")
		}
		return nil
	}
	guard := api.NewConnGuard(maxConns(log))
	ln = guard.Listener(ln)
	handler := api.New(m, api.Options{AdminToken: cfg.AdminToken, MetricsToken: cfg.MetricsToken, Logger: log, Metrics: mt,
		Ready: []api.ReadinessCheck{{Name: "listener", Check: listenerReady}}})
	be.routes(handler)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          api.ServerErrorLog(log),
		ConnContext:       guard.ConnContext,
		ConnState:         guard.ConnState,
	}
	srv.RegisterOnShutdown(m.EndConsoles)
	srv.RegisterOnShutdown(guard.CloseUnauthenticated)
	var certs *certReloader
	if cfg.useTLS() {
		certs = newCertReloader(cfg.TLSCert, cfg.TLSKey, cfg.tlsCert, log)
		// GetCertificate is asked at every handshake: a reload reaches new
		// connections at once and leaves established ones (console
		// streams) alone.
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	}

	served := make(chan error, 2)
	serving.Store(true)
	go func() {
		if cfg.useTLS() {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	if metricsSrv != nil {
		go func() { served <- metricsSrv.Serve(metricsLn) }()
	}
	// A cluster instance joins once it serves: the others may forward to
	// it as soon as they see it.
	if err := be.start(m); err != nil {
		serving.Store(false)
		srv.Close()
		if metricsSrv != nil {
			metricsSrv.Close()
		}
		m.Close(context.Background())
		be.close(context.Background())
		return &startupError{fmt.Errorf("joining the cluster: %w", err), 1}
	}
	attrs := []any{"addr", ln.Addr().String(), "tls", cfg.useTLS(),
		"version", build.Version, "revision", build.Revision, "go_version", build.GoVersion,
		"db_type", dbTypeName(cfg), "db_path", cfg.DBPath, "nodes", m.Stats().Nodes, "op_timeout", cfg.OpTimeout, "max_conns", guard.Max(),
		"metrics_token", cfg.MetricsToken != ""}
	if metricsLn != nil {
		attrs = append(attrs, "metrics_addr", metricsLn.Addr().String())
	}
	if consoleLog != nil {
		attrs = append(attrs, "console_log_dir", consoleLog.Dir)
	}
	if certs != nil {
		attrs = append(attrs, certs.describe()...)
	}
	log.Info("listening", attrs...)

	var serveErr error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break wait
		case serveErr = <-served:
			log.Error("HTTP server failed", "err", serveErr)
			break wait
		case <-hup:
			if certs == nil {
				log.Warn("SIGHUP ignored: obmd serves plaintext HTTP, there is no TLS certificate to re-read")
				continue
			}
			certs.reload()
		}
	}
	serving.Store(false)
	if metricsSrv != nil {
		metricsSrv.Close() // scrapes are short; nothing to wait for
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("requests still running at the shutdown deadline; closing their connections", "err", err)
		srv.Close()
	}
	be.leaving()
	if err := m.Close(shutdownCtx); err != nil {
		log.Warn("closing nodes", "err", err)
	}
	if err := be.close(shutdownCtx); err != nil {
		log.Error("closing the store", "err", err)
		if serveErr == nil {
			serveErr = err
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	log.Info("stopped")
	return nil
}

// privateDir creates dir 0700, or makes an existing one private: the
// console logs are the tenants' output, and the node directories' names
// are node IDs.
func privateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("other users can read it and it cannot be made private: %w", err)
		}
		log.Warn("CONSOLE_LOG_DIR was readable by other users; restricted it to obmd's user", "console_log_dir", dir)
	}
	return nil
}

func dbTypeName(cfg config) string {
	if cfg.DBType == "" {
		return "badger"
	}
	return cfg.DBType
}

// readHeaderTimeout bounds how long a client may take to send a request's
// headers: a client that sends nothing loses its connection within it.
const readHeaderTimeout = 5 * time.Second

// maxConns is the bound on HTTP connections: half the descriptors the
// process may open (the rest are for BMC sessions, the store and logs),
// within [16, 65536].
func maxConns(log *slog.Logger) int {
	var lim syscall.Rlimit
	n := 1024
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur > 0 {
		n = int(min(lim.Cur, 1<<20))
	}
	conns := min(max(n/2, 16), 65536)
	log.Debug("HTTP connection limit", "max_conns", conns, "nofile", n)
	return conns
}

// lingerSetting maps the configured linger (0 = close at once) to the hub's
// convention (0 = default, negative = at once).
func lingerSetting(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
