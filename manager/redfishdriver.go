package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"obmd/redfish"
)

// The "redfish" driver: power and boot device of a server whose BMC has
// IPMI over LAN turned off, through the DMTF Redfish API (package
// redfish), with the same contract as the ipmi driver (PowerDriver).
//
// Reset types are chosen from what the system allows
// (ResetType@Redfish.AllowableValues or the Reset action's ActionInfo):
//
//	power_on            On (ForceOn where On is not offered)
//	power_off           ForceOff
//	power_cycle force   PowerCycle where offered, else ForceRestart; a
//	                    system offering neither is forced off and on
//	power_cycle soft    GracefulShutdown (PushPowerButton where that is not
//	                    offered), On once the system is Off, forced off
//	                    after the ipmi driver's grace
//	boot_device         Boot {BootSourceOverrideTarget: Pxe|Hdd|None,
//	                    BootSourceOverrideEnabled: Continuous}
//
// A node already in the state asked for is left alone (some BMCs answer
// On to a running system with 409), and a node that is off is powered on
// by a power cycle, as with ipmi.
//
// power_status maps PowerState to the state the node is in or heading to:
// On and PoweringOn are "on", Off and PoweringOff are "off", Paused (power
// applied, processors halted) is "on". So power_status agrees with a
// power_on or power_off the moment it returns, as on IPMI where those act
// at once, even on a BMC that reports the transition for seconds. The soft
// power cycle itself waits for a real Off.
//
// Where the BMC refuses Continuous, the boot override is set Once and set
// again before every power on or cycle obmd performs (package redfish
// learns the refusal; the driver remembers the device, in memory only).
//
// The console, if the node's info names one, is the ipmi driver's SOL
// console on the same BMC with the same credentials.

// RedfishDriverConfig tunes the redfish driver. Zero values take the
// defaults noted.
type RedfishDriverConfig struct {
	// SoftOffGrace: how long a soft power cycle waits for the OS to turn
	// the node off before forcing it (default DefaultIPMISoftOffGrace, the
	// ipmi driver's).
	SoftOffGrace time.Duration
	// PowerPollInterval paces PowerState polling while waiting for Off
	// (default DefaultIPMIPowerPollInterval).
	PowerPollInterval time.Duration
	// IdleTimeout, LoginHoldOff, TaskPoll and MaxBody tune the client
	// (package redfish defaults).
	IdleTimeout  time.Duration
	LoginHoldOff time.Duration
	TaskPoll     time.Duration
	MaxBody      int64
	// Console configures the SOL console's ipmi driver.
	Console IPMIDriverConfig
}

func (c RedfishDriverConfig) withDefaults() RedfishDriverConfig {
	if c.SoftOffGrace <= 0 {
		c.SoftOffGrace = DefaultIPMISoftOffGrace
	}
	if c.PowerPollInterval <= 0 {
		c.PowerPollInterval = DefaultIPMIPowerPollInterval
	}
	return c
}

// RedfishDriverType is the "redfish" driver type with cfg.
func RedfishDriverType(cfg RedfishDriverConfig) DriverType {
	return typedDriver("redfish", ParseRedfishInfo, func(info RedfishInfo, env DriverEnv) (Driver, error) {
		return NewRedfishDriver(info, env, cfg)
	})
}

// NewRedfishDriver builds the driver of one Redfish node. It does no
// network I/O: the first operation logs in.
func NewRedfishDriver(info RedfishInfo, env DriverEnv, cfg RedfishDriverConfig) (Driver, error) {
	return newRedfishDriver(info, env, cfg)
}

func newRedfishDriver(info RedfishInfo, env DriverEnv, cfg RedfishDriverConfig) (*redfishDriver, error) {
	cfg = cfg.withDefaults()
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("driver", "redfish", "bmc", info.BaseURL)
	tlsCfg, err := redfish.TLSConfig(info.CACert, info.VerifyTLS)
	if err != nil {
		return nil, Invalidf("invalid redfish info: %v", err)
	}
	client, err := redfish.New(redfish.Config{
		BaseURL:      info.BaseURL,
		User:         info.User,
		Password:     info.Pass,
		System:       info.System,
		TLS:          tlsCfg,
		MaxBody:      cfg.MaxBody,
		IdleTimeout:  cfg.IdleTimeout,
		LoginHoldOff: cfg.LoginHoldOff,
		TaskPoll:     cfg.TaskPoll,
		Logger:       log,
	})
	if err != nil {
		return nil, Invalidf("invalid redfish info: %v", err)
	}
	d := &redfishDriver{info: info, cfg: cfg, log: log, client: client}
	if info.Console != nil {
		con, err := newIPMIDriver(*info.Console, DriverEnv{NodeID: env.NodeID, Logger: env.Logger}, cfg.Console)
		if err != nil {
			return nil, err
		}
		d.console = con
	}
	return d, nil
}

// redfishDriver is the Driver of one Redfish node.
type redfishDriver struct {
	info    RedfishInfo // holds the password: log info (its LogValue) instead
	cfg     RedfishDriverConfig
	log     *slog.Logger
	client  *redfish.Client
	console *ipmiDriver // SOL over IPMI; nil without a console

	mu sync.Mutex
	// onceTarget is the boot target to set Once again before each boot
	// obmd causes, on a BMC that refuses Continuous ("" otherwise).
	onceTarget string // (mu)
}

// classify gives an error from package redfish its manager kind, with the
// BMC's address for the operator and a tenant message without it.
func (d *redfishDriver) classify(op string, err error) error {
	if err == nil || hasKind(err) || errors.Is(err, context.Canceled) {
		return err
	}
	var amb *redfish.AmbiguousSystemError
	var nss *redfish.NoSuchSystemError
	var herr *redfish.HTTPError
	var tlsErr *redfish.TLSError
	var opErr *net.OpError
	var te interface{ Timeout() bool }
	where := fmt.Sprintf("%s (Redfish BMC %s)", op, d.info.BaseURL)
	switch {
	case errors.Is(err, redfish.ErrClosed):
		return &Error{Kind: ErrInternal, Reason: op + ": the node's driver is closed", Err: err}
	case errors.As(err, &amb), errors.As(err, &nss):
		// The node's registration is incomplete: a request error, told
		// as it is (it names the systems, not the BMC's address).
		return &Error{Kind: ErrInvalid, Reason: fmt.Sprintf("%s: %s", op, trimPkg(err))}
	case errors.As(err, &herr) && herr.Unauthorized():
		return CredentialsError(where, err)
	case errors.As(err, &tlsErr):
		hint := "the BMC did not complete a TLS handshake (is this its HTTPS port?)"
		if tlsErr.CertificateRejected() {
			hint = "the BMC's certificate is not signed by a CA this host trusts: give its certificate or CA in ca_cert (or opt out with verify_tls: false)"
			if len(d.info.CACert) > 0 {
				hint = "the BMC's certificate does not verify against the node's ca_cert"
			}
		}
		return TenantError(ErrBMC, where+": TLS: "+hint, err,
			"the BMC's TLS certificate was not accepted; retrying will not help, ask the operator")
	case errors.Is(err, context.DeadlineExceeded):
		return TimeoutError(fmt.Sprintf("%s: Redfish BMC %s did not answer within the operation's time limit", op, d.info.BaseURL), nil)
	case errors.As(err, &te) && te.Timeout():
		return TimeoutError(where, err)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return TimeoutError(where+": cannot connect", err)
	}
	return BMCError(where, err)
}

// trimPkg drops package redfish's prefix from an error's text.
func trimPkg(err error) string {
	s := err.Error()
	const p = "redfish: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

func (d *redfishDriver) powerState(ctx context.Context, op string) (redfish.PowerState, error) {
	st, err := d.client.PowerState(ctx)
	return st, d.classify(op, err)
}

// PowerStatus maps PowerState to "on" or "off" (see the driver's
// comment).
func (d *redfishDriver) PowerStatus(ctx context.Context) (string, error) {
	st, err := d.powerState(ctx, "power status")
	if err != nil {
		return "", err
	}
	return powerStatusName(st), nil
}

// powerStatusName is the API's name for a PowerState: the state the node
// is in or heading to.
func powerStatusName(st redfish.PowerState) string {
	switch st {
	case redfish.PowerOff, redfish.PowerPoweringOff:
		return "off"
	}
	return "on" // On, PoweringOn, Paused
}

// reset chooses the first allowed of prefs and posts it.
func (d *redfishDriver) reset(ctx context.Context, op string, prefs ...string) error {
	t, err := d.client.ChooseReset(ctx, prefs...)
	if err != nil {
		return d.classify(op, err)
	}
	d.log.Debug("Redfish reset", "op", op, "reset_type", t)
	return d.classify(op, d.client.Reset(ctx, t))
}

// PowerOn sends On unless the system is on or powering on.
func (d *redfishDriver) PowerOn(ctx context.Context) error {
	st, err := d.powerState(ctx, "power on")
	if err != nil {
		return err
	}
	if st == redfish.PowerOn || st == redfish.PowerPoweringOn {
		return nil
	}
	return d.powerOn(ctx)
}

// powerOn re-applies a Once boot override, then sends On. A refusal is
// checked against the state: a BMC that says "already on" is on.
func (d *redfishDriver) powerOn(ctx context.Context) error {
	if err := d.reapplyBoot(ctx); err != nil {
		return err
	}
	err := d.reset(ctx, "power on", redfish.ResetOn, redfish.ResetForceOn)
	if err != nil && errors.Is(err, ErrBMC) {
		if st, serr := d.client.PowerState(ctx); serr == nil && (st == redfish.PowerOn || st == redfish.PowerPoweringOn) {
			return nil
		}
	}
	return err
}

// PowerOff sends ForceOff unless the system is off.
func (d *redfishDriver) PowerOff(ctx context.Context) error {
	st, err := d.powerState(ctx, "power off")
	if err != nil {
		return err
	}
	if st == redfish.PowerOff {
		return nil
	}
	return d.powerOff(ctx)
}

func (d *redfishDriver) powerOff(ctx context.Context) error {
	err := d.reset(ctx, "power off", redfish.ResetForceOff)
	if err != nil && errors.Is(err, ErrBMC) {
		if st, serr := d.client.PowerState(ctx); serr == nil && st == redfish.PowerOff {
			return nil
		}
	}
	return err
}

// PowerCycle: see the driver's comment.
func (d *redfishDriver) PowerCycle(ctx context.Context, force bool) error {
	st, err := d.powerState(ctx, "power cycle")
	if err != nil {
		return err
	}
	if st == redfish.PowerOff {
		d.log.Debug("node is off; powering it on instead of cycling it")
		return d.powerOn(ctx)
	}
	if force {
		return d.forcedCycle(ctx)
	}
	return d.softCycle(ctx)
}

func (d *redfishDriver) forcedCycle(ctx context.Context) error {
	if err := d.reapplyBoot(ctx); err != nil {
		return err
	}
	t, err := d.client.ChooseReset(ctx, redfish.ResetPowerCycle, redfish.ResetForceRestart)
	var se *redfish.ServiceError
	if errors.As(err, &se) {
		d.log.Info("the system offers neither PowerCycle nor ForceRestart; forcing it off and on")
		return d.powerSteps().finishSoftCycle(ctx, time.Time{}, time.Time{})
	}
	if err != nil {
		return d.classify("forced power cycle", err)
	}
	return d.classify("forced power cycle", d.client.Reset(ctx, t))
}

func (d *redfishDriver) softCycle(ctx context.Context) error {
	t, err := d.client.ChooseReset(ctx, redfish.ResetGracefulShutdown, redfish.ResetPushPowerButton)
	var se *redfish.ServiceError
	switch {
	case errors.As(err, &se):
		d.log.Info("the system offers no graceful shutdown; forcing it off")
	case err != nil:
		return d.classify("soft power off", err)
	default:
		if err := d.classify("soft power off", d.client.Reset(ctx, t)); err != nil {
			return err
		}
	}
	asked, until := time.Now(), time.Time{}
	if se == nil {
		until = graceEnd(ctx, d.cfg.SoftOffGrace, 10*time.Second)
	}
	return d.powerSteps().finishSoftCycle(ctx, asked, until)
}

// powerSteps are the driver's steps for the end of a soft power cycle.
// PoweringOff is not off yet: the wait is for Off.
func (d *redfishDriver) powerSteps() powerSteps {
	isOn := func(ctx context.Context) (bool, error) {
		st, err := d.powerState(ctx, "waiting for the node to power off")
		return st != redfish.PowerOff, err
	}
	return powerSteps{isOn: isOn, forceOff: d.powerOff, powerOn: d.powerOn,
		classify: d.classify, poll: d.cfg.PowerPollInterval, log: d.log}
}

// redfishBootTargets maps the API's boot device names to
// BootSourceOverrideTarget values.
var redfishBootTargets = map[string]string{
	"pxe":  redfish.BootTargetPxe,
	"disk": redfish.BootTargetHdd,
	"none": redfish.BootTargetNone, // no override: the normal boot order
}

// SetBootDevice sets a persistent boot source override (see the driver's
// comment for BMCs that refuse Continuous).
func (d *redfishDriver) SetBootDevice(ctx context.Context, name string) error {
	target, ok := redfishBootTargets[name]
	if !ok {
		return Invalidf("unknown boot device %q (want \"pxe\", \"disk\" or \"none\")", name)
	}
	enabled, err := d.client.SetBootOverride(ctx, target)
	if err != nil {
		return d.classify("set boot device "+name, err)
	}
	d.mu.Lock()
	d.onceTarget = ""
	if enabled == redfish.BootEnabledOnce {
		d.onceTarget = target
	}
	d.mu.Unlock()
	if enabled != redfish.BootEnabledContinuous {
		d.log.Info("boot override set with the nearest persistent equivalent the BMC accepts",
			"target", target, "enabled", enabled)
	}
	return nil
}

// reapplyBoot sets the Once override again before a boot obmd causes, on
// a BMC that refuses Continuous.
func (d *redfishDriver) reapplyBoot(ctx context.Context) error {
	d.mu.Lock()
	target := d.onceTarget
	d.mu.Unlock()
	if target == "" {
		return nil
	}
	if _, err := d.client.SetBootOverride(ctx, target); err != nil {
		return d.classify("setting the one-time boot override again before booting", err)
	}
	return nil
}

// OpenConsole opens the SOL console over IPMI, if the node has one.
func (d *redfishDriver) OpenConsole(ctx context.Context) (io.ReadCloser, error) {
	if d.console == nil {
		return nil, UnsupportedError("this node has no console: it is a redfish node registered without \"console\" in its info (Redfish has no serial console; add {\"type\": \"ipmi\"} for SOL on the same BMC)")
	}
	return d.console.OpenConsole(ctx)
}

// Close deletes the Redfish session and closes the console's sessions.
func (d *redfishDriver) Close() error {
	if err := d.client.Close(context.Background()); err != nil {
		d.log.Debug("deleting the Redfish session", "err", err)
	}
	if d.console != nil {
		return d.console.Close()
	}
	return nil
}

// Status reports the session and what the driver learned of the BMC.
func (d *redfishDriver) Status() DriverStatus {
	st := d.client.Status()
	ds := DriverStatus{Details: map[string]any{"logins": st.Logins}}
	switch {
	case st.Auth == "session":
		ds.Sessions = "Redfish session open since " + st.SessionSince.UTC().Format(time.RFC3339)
	case st.Auth == "basic":
		ds.Sessions = "HTTP Basic (the service offers no sessions)"
	default:
		ds.Sessions = "no Redfish session open"
	}
	if !st.LoginRefusedUntil.IsZero() {
		ds.Details["login_refused"] = st.LoginRefused
		ds.Details["next_login_after"] = st.LoginRefusedUntil.UTC()
	}
	if st.System != "" {
		ds.Details["system"] = st.System
		if st.ResetTypesListed {
			ds.Details["reset_types"] = st.ResetTypes
		} else {
			ds.Details["reset_types"] = "not listed by the BMC (any may be tried)"
		}
	}
	if st.TasksFollowed > 0 {
		ds.Details["tasks_followed"] = st.TasksFollowed
	}
	if st.Auth == "basic" {
		ds.Quirks = append(ds.Quirks, QuirkStatus{Name: "no-sessions", Source: QuirkDetected,
			Evidence: "the service offers no SessionService login; HTTP Basic on every request"})
	}
	if st.ETagRequired {
		ds.Quirks = append(ds.Quirks, QuirkStatus{Name: "etag-required", Source: QuirkDetected,
			Evidence: "a PATCH without If-Match was answered 412/428"})
	}
	if st.ContinuousRefused {
		ds.Quirks = append(ds.Quirks, QuirkStatus{Name: "no-continuous", Source: QuirkDetected,
			Evidence: st.ContinuousWhy + "; the override is set Once before every boot obmd causes"})
	}
	if st.ResetTypesListed && st.System != "" {
		allowed := map[string]bool{}
		for _, t := range st.ResetTypes {
			allowed[t] = true
		}
		if !allowed[redfish.ResetPowerCycle] {
			ds.Quirks = append(ds.Quirks, QuirkStatus{Name: "no-powercycle", Source: QuirkDetected,
				Evidence: "the Reset action does not offer PowerCycle; a forced power cycle is a ForceRestart"})
		}
	}
	return ds
}
