package redfish

import (
	"context"
	"errors"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
)

// systemInfo is what the client learned once about the chosen system:
// where it is and what its Reset action and Boot object allow. PowerState
// and ETags are read fresh every time.
type systemInfo struct {
	path       string
	reset      ResetAction
	resetKnown bool // reset.Allowed came from the BMC (inline or ActionInfo)
	boot       Boot
}

// system discovers the chosen ComputerSystem once: the Systems collection,
// the member (Config.System, or the only one), the system itself and, when
// the Reset action lists no allowable values inline, its ActionInfo
// (DSP0266 "Allowable values": either form may be used).
func (c *Client) system(ctx context.Context) (*systemInfo, ComputerSystem, *response, error) {
	c.mu.Lock()
	si := c.sys
	c.mu.Unlock()
	if si != nil {
		cs, r, err := get(ctx, c, si.path, DecodeComputerSystem)
		if err != nil {
			c.dropSystemOn404(err)
		}
		return si, cs, r, err
	}

	root, err := c.serviceRoot(ctx)
	if err != nil {
		return nil, ComputerSystem{}, nil, err
	}
	if root.Systems == "" {
		return nil, ComputerSystem{}, nil, &ServiceError{Problem: "the service root lists no Systems collection"}
	}
	coll, _, err := get(ctx, c, root.Systems, DecodeCollection)
	if err != nil {
		return nil, ComputerSystem{}, nil, err
	}
	member, err := chooseSystem(coll.Members, c.cfg.System)
	if err != nil {
		return nil, ComputerSystem{}, nil, err
	}
	cs, r, err := get(ctx, c, member, DecodeComputerSystem)
	if err != nil {
		return nil, ComputerSystem{}, nil, err
	}
	if cs.Reset.Target == "" {
		return nil, ComputerSystem{}, nil, &ServiceError{Problem: "system " + member + " has no #ComputerSystem.Reset action"}
	}
	si = &systemInfo{path: member, reset: cs.Reset, resetKnown: cs.Reset.Allowed != nil, boot: cs.Boot}
	if !si.resetKnown && cs.Reset.ActionInfo != "" {
		allowed, listed, err := c.actionInfo(ctx, cs.Reset.ActionInfo, "ResetType")
		if err != nil {
			return nil, ComputerSystem{}, nil, err
		}
		if listed && allowed != nil {
			si.reset.Allowed, si.resetKnown = allowed, true
		}
	}
	c.mu.Lock()
	c.sys = si
	c.mu.Unlock()
	c.log.Debug("Redfish system found", "system", member, "reset_types", si.reset.Allowed)
	return si, cs, r, nil
}

func (c *Client) actionInfo(ctx context.Context, p, param string) ([]string, bool, error) {
	r, err := c.call(ctx, http.MethodGet, p, nil, nil)
	if err != nil {
		return nil, false, err
	}
	allowed, listed, err := DecodeActionInfo(r.body, param)
	if err != nil {
		return nil, false, &ResourceError{Method: http.MethodGet, Resource: p, Err: err}
	}
	return allowed, listed, nil
}

// dropSystemOn404 forgets the discovered system if the BMC no longer has
// it (a firmware update may renumber), so the next call discovers anew.
func (c *Client) dropSystemOn404(err error) {
	var herr *HTTPError
	if errors.As(err, &herr) && herr.Status == http.StatusNotFound {
		c.mu.Lock()
		c.sys = nil
		c.mu.Unlock()
	}
}

// chooseSystem picks want (an Id or a path) among members, or the only
// member when want is empty.
func chooseSystem(members []string, want string) (string, error) {
	if want == "" {
		switch len(members) {
		case 0:
			return "", &ServiceError{Problem: "the Systems collection is empty"}
		case 1:
			return members[0], nil
		}
		return "", &AmbiguousSystemError{Members: members}
	}
	norm := strings.TrimSuffix(want, "/")
	for _, m := range members {
		mn := strings.TrimSuffix(m, "/")
		if mn == norm || path.Base(mn) == norm {
			return m, nil
		}
	}
	return "", &NoSuchSystemError{Want: want, Members: members}
}

// System reads the chosen ComputerSystem now.
func (c *Client) System(ctx context.Context) (ComputerSystem, error) {
	_, cs, _, err := c.system(ctx)
	return cs, err
}

// PowerState reads the system's PowerState now.
func (c *Client) PowerState(ctx context.Context) (PowerState, error) {
	si, cs, _, err := c.system(ctx)
	if err != nil {
		return "", err
	}
	if cs.PowerState == "" {
		return "", &ServiceError{Problem: "system " + si.path + " reports no PowerState"}
	}
	return cs.PowerState, nil
}

// ResetTypes returns the reset types the system allows, and whether the
// BMC said (false: it lists none, so any type of the schema may work).
func (c *Client) ResetTypes(ctx context.Context) ([]string, bool, error) {
	si, _, _, err := c.system(ctx)
	if err != nil {
		return nil, false, err
	}
	return si.reset.Allowed, si.resetKnown, nil
}

// ChooseReset returns the first of prefs the system allows. A system that
// lists no allowable values gets the first preference (the schema's
// "allowable values" are optional: absent means any).
func (c *Client) ChooseReset(ctx context.Context, prefs ...string) (string, error) {
	allowed, known, err := c.ResetTypes(ctx)
	if err != nil {
		return "", err
	}
	if t, ok := chooseReset(allowed, known, prefs); ok {
		return t, nil
	}
	return "", &ServiceError{Problem: "the system allows none of the reset types " + strings.Join(prefs, ", ") +
		" (it allows " + strings.Join(allowed, ", ") + ")"}
}

func chooseReset(allowed []string, known bool, prefs []string) (string, bool) {
	if len(prefs) == 0 {
		return "", false
	}
	if !known {
		return prefs[0], true
	}
	for _, p := range prefs {
		if slices.Contains(allowed, p) {
			return p, true
		}
	}
	return "", false
}

// Reset posts ComputerSystem.Reset with resetType (DSP8010 ComputerSystem
// schema, Reset action) and, if the BMC answers 202 Accepted, follows the
// task to its end within ctx.
func (c *Client) Reset(ctx context.Context, resetType string) error {
	si, err := c.systemInfo(ctx)
	if err != nil {
		return err
	}
	r, err := c.call(ctx, http.MethodPost, si.reset.Target, map[string]string{"ResetType": resetType}, nil)
	if err != nil {
		c.dropSystemOn404(err)
		return err
	}
	if r.status == http.StatusAccepted {
		return c.followTask(ctx, http.MethodPost, si.reset.Target, r)
	}
	return nil
}

// systemInfo returns the discovered system, discovering it if need be.
func (c *Client) systemInfo(ctx context.Context) (*systemInfo, error) {
	c.mu.Lock()
	si := c.sys
	c.mu.Unlock()
	if si != nil {
		return si, nil
	}
	si, _, _, err := c.system(ctx)
	return si, err
}

// SetBootOverride sets the persistent boot source override to target
// (Pxe, Hdd, None) and returns the BootSourceOverrideEnabled it used.
//
// Continuous is what "persistent" means in the schema. Some BMCs refuse it
// (they list only Once and Disabled in
// BootSourceOverrideEnabled@Redfish.AllowableValues, or answer the PATCH
// with 400 naming the value): then the nearest persistent equivalent is
// used, and said in the log and in Status: Disabled for target None (no
// override at all is as persistent as it gets), Once otherwise, which the
// caller must set again before each boot it causes.
func (c *Client) SetBootOverride(ctx context.Context, target string) (string, error) {
	si, err := c.systemInfo(ctx)
	if err != nil {
		return "", err
	}
	if si.boot.AllowedTargets != nil && !slices.Contains(si.boot.AllowedTargets, target) {
		return "", &ServiceError{Problem: "the system does not offer boot override target " + target +
			" (it offers " + strings.Join(si.boot.AllowedTargets, ", ") + ")"}
	}
	c.mu.Lock()
	refused := c.learned.continuousRefused
	c.mu.Unlock()
	if !refused && si.boot.AllowedEnabled != nil && !slices.Contains(si.boot.AllowedEnabled, BootEnabledContinuous) {
		c.noteContinuousRefused("BootSourceOverrideEnabled@Redfish.AllowableValues lists only " + strings.Join(si.boot.AllowedEnabled, ", "))
		refused = true
	}
	if !refused {
		err := c.patchBoot(ctx, si.path, target, BootEnabledContinuous)
		var herr *HTTPError
		if err == nil || !errors.As(err, &herr) || herr.Status != http.StatusBadRequest || !mentionsContinuous(herr) {
			return BootEnabledContinuous, err
		}
		c.noteContinuousRefused("the PATCH was answered " + herr.Detail())
	}
	enabled := BootEnabledOnce
	if target == BootTargetNone {
		enabled = BootEnabledDisabled
	}
	return enabled, c.patchBoot(ctx, si.path, target, enabled)
}

// ContinuousRefused reports whether the BMC refuses Continuous boot
// overrides (learned by SetBootOverride).
func (c *Client) ContinuousRefused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.learned.continuousRefused
}

func mentionsContinuous(herr *HTTPError) bool {
	d := herr.Detail()
	for _, m := range herr.Body.Info {
		d += " " + strings.Join(m.Args, " ")
	}
	return strings.Contains(d, BootEnabledContinuous) || strings.Contains(d, "BootSourceOverrideEnabled")
}

func (c *Client) noteContinuousRefused(why string) {
	c.mu.Lock()
	first := !c.learned.continuousRefused
	c.learned.continuousRefused = true
	c.learned.continuousSince = time.Now()
	c.learned.continuousWhy = why
	c.mu.Unlock()
	if first {
		c.log.Warn("the BMC refuses a Continuous boot override; using the nearest persistent equivalent (Once, set again before every power on or cycle obmd performs; Disabled for \"none\")", "evidence", why)
	}
}

func (c *Client) patchBoot(ctx context.Context, sysPath, target, enabled string) error {
	body := map[string]any{"Boot": map[string]string{
		"BootSourceOverrideTarget":  target,
		"BootSourceOverrideEnabled": enabled,
	}}
	return c.patch(ctx, sysPath, body)
}

// patch PATCHes a resource, with If-Match where the BMC needs it (DSP0266
// "ETags": services may answer 412 Precondition Failed to a PATCH without
// If-Match, or 428 Precondition Required; some do, HPE iLO among them).
// The first refusal teaches the client to send If-Match from then on; a
// 412 to a stale ETag is retried once with a fresh one.
func (c *Client) patch(ctx context.Context, p string, body any) error {
	var hdr http.Header
	c.mu.Lock()
	need := c.learned.etagRequired
	c.mu.Unlock()
	if need {
		etag, err := c.etagOf(ctx, p)
		if err != nil {
			return err
		}
		hdr = http.Header{"If-Match": {etag}}
	}
	r, err := c.call(ctx, http.MethodPatch, p, body, hdr)
	var herr *HTTPError
	if errors.As(err, &herr) && (herr.Status == http.StatusPreconditionFailed || herr.Status == http.StatusPreconditionRequired) {
		if hdr == nil {
			c.mu.Lock()
			c.learned.etagRequired = true
			c.learned.etagSince = time.Now()
			c.mu.Unlock()
			c.log.Info("the BMC requires If-Match on PATCH; sending the resource's ETag from now on", "resource", p, "status", herr.Status)
		}
		etag, err2 := c.etagOf(ctx, p)
		if err2 != nil {
			return err2
		}
		r, err = c.call(ctx, http.MethodPatch, p, body, http.Header{"If-Match": {etag}})
	}
	if err != nil {
		return err
	}
	if r.status == http.StatusAccepted {
		return c.followTask(ctx, http.MethodPatch, p, r)
	}
	return nil
}

// etagOf reads a resource's ETag: the ETag header, else @odata.etag.
func (c *Client) etagOf(ctx context.Context, p string) (string, error) {
	r, err := c.call(ctx, http.MethodGet, p, nil, nil)
	if err != nil {
		return "", err
	}
	if e := r.header.Get("ETag"); e != "" {
		return e, nil
	}
	var b struct {
		ETag string `json:"@odata.etag"`
	}
	if err := decodeObject("resource", r.body, &b); err == nil && b.ETag != "" {
		return b.ETag, nil
	}
	return "", &ServiceError{Problem: "the BMC asks for If-Match on " + p + " but gives the resource no ETag"}
}
