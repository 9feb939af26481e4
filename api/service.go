package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// The service endpoints an operator's tooling calls (obmd's additions):
// probes, metrics and the API description.

// quietRoutes are logged at debug level, not info: load balancers, kubelets
// and Prometheus call them every few seconds.
var quietRoutes = map[string]bool{
	"/livez":   true,
	"/readyz":  true,
	"/healthz": true,
	"/metrics": true,
}

// ReadinessCheck is one condition /readyz requires: Check returns nil
// when it holds, or why not. Name prefixes the reason ("listener: ...").
type ReadinessCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// readyTimeout bounds all of /readyz's checks together.
const readyTimeout = 2 * time.Second

// livez answers while the process serves HTTP at all.
func livez(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readyz answers 200 when the store is open and writable and every
// configured check passes, else 503 naming the first that failed.
func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	checks := append([]ReadinessCheck{{Name: "store", Check: s.m.CheckStore}}, s.ready...)
	for _, ch := range checks {
		if err := ch.Check(ctx); err != nil {
			c.Header("Cache-Control", "no-store")
			abortError(c, http.StatusServiceUnavailable, "not ready: "+ch.Name+": "+err.Error())
			return
		}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// metricsUser is the HTTP Basic user name for the scrape credential; the
// password is METRICS_TOKEN. (A bearer token works too.)
const metricsUser = "metrics"

// scraper lets a request through to /metrics when it carries the scrape
// credential (METRICS_TOKEN, as "Authorization: Bearer T" or as the Basic
// password of user "metrics") or the admin's. Without METRICS_TOKEN only
// the admin may scrape: the main listener never serves metrics openly
// (METRICS_ADDR does, on its own listener). Every comparison is between
// SHA-256 digests in constant time, and all of them are made whatever
// the request carries.
func (s *server) scraper(c *gin.Context) {
	bearer := ""
	if h := c.GetHeader("Authorization"); len(h) > len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		bearer = strings.TrimSpace(h[len("Bearer "):])
	}
	user, pass, _ := c.Request.BasicAuth()
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	b := sha256.Sum256([]byte(bearer))
	metricsUserDigest := sha256.Sum256([]byte(metricsUser))

	admin := subtle.ConstantTimeCompare(u[:], s.adminUser[:]) & subtle.ConstantTimeCompare(p[:], s.adminPass[:])
	basic := subtle.ConstantTimeCompare(u[:], metricsUserDigest[:]) & subtle.ConstantTimeCompare(p[:], s.metricsPass[:])
	token := subtle.ConstantTimeCompare(b[:], s.metricsPass[:])
	if !s.hasMetricsToken {
		basic, token = 0, 0
	}
	if admin|basic|token != 1 {
		c.Writer.Header().Add("WWW-Authenticate", `Bearer realm="obmd metrics"`)
		c.Writer.Header().Add("WWW-Authenticate", `Basic realm="obmd"`)
		abortError(c, http.StatusUnauthorized, "metrics credentials missing or wrong: send METRICS_TOKEN as a bearer token, or as the password of user \"metrics\"")
		return
	}
	markAuthenticated(c) // a scraper's keep-alive connection is not an eviction candidate
	c.Next()
}

// observeHTTP feeds the request latency histogram, by route pattern (never
// the node ID), method and status.
func (s *server) observeHTTP(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.metrics.ObserveHTTP(c.FullPath(), c.Request.Method, c.Writer.Status(), time.Since(start))
}

// consoleLog answers a node's console log (CONSOLE_LOG_DIR) to the admin:
// the current tenancy's, or ?tenancy=N's, as timestamped text. Headers
// name the tenancy shown and those with logs left.
func (s *server) consoleLog(c *gin.Context) {
	tenancy := 0
	if v := c.Query("tenancy"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			abortError(c, http.StatusBadRequest, "tenancy must be a tenancy number (1 or more); leave it out for the current one")
			return
		}
		tenancy = n
	}
	cl, err := s.m.ConsoleLog(c.Param("node_id"), tenancy)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer cl.Content.Close()
	tenancies := make([]string, len(cl.Tenancies))
	for i, t := range cl.Tenancies {
		tenancies[i] = strconv.Itoa(t)
	}
	c.DataFromReader(http.StatusOK, cl.Size, "text/plain; charset=utf-8", cl.Content, map[string]string{
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"X-Obmd-Tenancy":         strconv.Itoa(cl.Tenancy),
		"X-Obmd-Current-Tenancy": strconv.Itoa(cl.Current),
		"X-Obmd-Tenancies":       strings.Join(tenancies, ","),
	})
}

// openAPIDocument describes every route (openapi_test.go keeps it in step
// with the router).
//
//go:embed openapi.json
var openAPIDocument []byte

func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openAPIDocument)
}
