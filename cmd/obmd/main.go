// Command obmd is the out-of-band management daemon: it serves HIL's REST
// API (power, boot device, serial console) for the nodes registered with it,
// keeping them in a Badger database.
//
// Configuration comes from the environment (LISTEN_ADDR, ADMIN_TOKEN,
// TLS_CERT, TLS_KEY, INSECURE, DB_PATH, DB_TYPE, ...) or from flags of the
// same meaning; see obmd -help. obmd -gen-token prints a fresh admin token.
// SIGTERM or SIGINT shut it down gracefully within 5 seconds.
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
	"syscall"
	"time"

	"obmd/api"
	"obmd/manager"
	"obmd/store"
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
	cfg, genToken, err := loadConfig(args, getenv, stderr)
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
	case genToken:
		var tok [16]byte
		if _, err := rand.Read(tok[:]); err != nil {
			fmt.Fprintf(stderr, "obmd: reading random bytes: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, hex.EncodeToString(tok[:]))
		return 0
	}

	var handler slog.Handler
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(stderr, nil)
	} else {
		handler = slog.NewTextHandler(stderr, nil)
	}
	log := slog.New(handler)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		var se *startupError
		if errors.As(err, &se) {
			// Nothing is running yet: one line saying what to fix.
			fmt.Fprintf(stderr, "obmd: %v\n", se.err)
			return se.code
		}
		log.Error("obmd stopped", "err", err)
		fmt.Fprintf(stderr, "obmd: %v\n", err)
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
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	// Every file obmd creates (the database holds BMC passwords) is for
	// its own user only.
	syscall.Umask(0o077)
	if fixed, err := store.RestrictPermissions(cfg.DBPath); err != nil {
		return &startupError{fmt.Errorf("DB_PATH %s: %w", cfg.DBPath, err), 2}
	} else if fixed > 0 {
		log.Warn("DB_PATH was readable by other users; restricted it to obmd's user", "db_path", cfg.DBPath, "changed", fixed)
	}
	st, err := store.Open(cfg.DBPath, log)
	if err != nil {
		return &startupError{fmt.Errorf("DB_PATH %s: %w; check that the directory is obmd's and writable, and that no other obmd uses it", cfg.DBPath, err), 2}
	}
	m, err := manager.New(manager.Config{
		Store:     st,
		Logger:    log,
		OpTimeout: cfg.OpTimeout,
		Console:   manager.HubConfig{Linger: lingerSetting(cfg.ConsoleLinger)},
	})
	if err != nil {
		st.Close()
		return err
	}

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		m.Close(context.Background())
		st.Close()
		return &startupError{fmt.Errorf("cannot listen on LISTEN_ADDR %s: %w", cfg.ListenAddr, err), 1}
	}
	guard := api.NewConnGuard(maxConns(log))
	ln = guard.Listener(ln)
	srv := &http.Server{
		Handler:           api.New(m, api.Options{AdminToken: cfg.AdminToken, Logger: log}),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          api.ServerErrorLog(log),
		ConnContext:       guard.ConnContext,
		ConnState:         guard.ConnState,
	}
	srv.RegisterOnShutdown(m.EndConsoles)
	srv.RegisterOnShutdown(guard.CloseUnauthenticated)
	if cfg.useTLS() {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cfg.tlsCert}}
	}

	served := make(chan error, 1)
	go func() {
		if cfg.useTLS() {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	log.Info("listening", "addr", ln.Addr().String(), "tls", cfg.useTLS(),
		"db_path", cfg.DBPath, "nodes", m.Stats().Nodes, "op_timeout", cfg.OpTimeout, "max_conns", guard.Max(),
		"ipmi_driver", manager.IPMIDriverAvailable())

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-served:
		log.Error("HTTP server failed", "err", serveErr)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("requests still running at the shutdown deadline; closing their connections", "err", err)
		srv.Close()
	}
	if err := m.Close(shutdownCtx); err != nil {
		log.Warn("closing nodes", "err", err)
	}
	if err := st.Close(); err != nil {
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
