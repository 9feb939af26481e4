package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// certReloader holds the TLS certificate obmd presents, and swaps it for
// the contents of TLS_CERT and TLS_KEY on SIGHUP. The http.Server asks it
// at every handshake (tls.Config.GetCertificate), so new connections get
// the new certificate while established ones (console streams) carry on
// with the session they negotiated. A new pair that does not load, does
// not match, or is not valid now is refused, and the previous one stays.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cur               atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string, initial *tls.Certificate, log *slog.Logger) *certReloader {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if initial.Leaf == nil && len(initial.Certificate) > 0 {
		initial.Leaf, _ = x509.ParseCertificate(initial.Certificate[0])
	}
	r.cur.Store(initial)
	return r
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// reload re-reads the files; it logs what it did and why it kept the old
// certificate if it did.
func (r *certReloader) reload() {
	cert, err := loadCertificate(r.certFile, r.keyFile, time.Now())
	if err != nil {
		r.log.Error("SIGHUP: TLS certificate not reloaded; still serving the previous one",
			append([]any{"err", err}, r.describe()...)...)
		return
	}
	old := r.cur.Swap(cert)
	attrs := r.describe()
	if old.Leaf != nil {
		attrs = append(attrs, "previous_serial", serialText(old.Leaf))
	}
	r.log.Info("SIGHUP: TLS certificate reloaded; new connections get it, open ones keep theirs", attrs...)
}

// describe is the current certificate as log attributes.
func (r *certReloader) describe() []any {
	leaf := r.cur.Load().Leaf
	if leaf == nil {
		return []any{"tls_cert", r.certFile}
	}
	return []any{"tls_cert", r.certFile, "serial", serialText(leaf),
		"subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
}

// loadCertificate loads a key pair and checks that its leaf is valid at
// now: an expired or not-yet-valid certificate would break every new
// connection, so it is a bad reload, not a new certificate.
func loadCertificate(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil {
		if len(cert.Certificate) == 0 {
			return nil, errors.New("no certificate in TLS_CERT")
		}
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parsing the certificate: %w", err)
		}
	}
	switch {
	case now.After(cert.Leaf.NotAfter):
		return nil, fmt.Errorf("the certificate in %s expired at %s", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(cert.Leaf.NotBefore):
		return nil, fmt.Errorf("the certificate in %s is not valid before %s", certFile, cert.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

func serialText(c *x509.Certificate) string {
	return fmt.Sprintf("%X", c.SerialNumber)
}
