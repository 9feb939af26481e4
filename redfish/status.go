package redfish

import "time"

// Status is what the client knows and learned about its BMC, for the
// operator (manager.DriverStatus).
type Status struct {
	// Auth is "none" (no session open), "session" or "basic".
	Auth         string
	SessionSince time.Time // zero without a session
	Logins       int64     // login attempts so far
	// LoginRefusedUntil is set while a refusal of the credentials holds
	// further logins off.
	LoginRefusedUntil time.Time
	LoginRefused      string // the refusal, for the operator
	System            string // the chosen system's path, once discovered
	// ResetTypes are the reset types the system allows; ResetTypesListed
	// says whether the BMC listed them (inline or in an ActionInfo).
	ResetTypes        []string
	ResetTypesListed  bool
	ETagRequired      bool
	ContinuousRefused bool
	ContinuousWhy     string
	TasksFollowed     int64 // actions answered 202 and followed
}

// Status reports the client's state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{
		Auth:              c.auth.kind.String(),
		Logins:            c.logins.Load(),
		ETagRequired:      c.learned.etagRequired,
		ContinuousRefused: c.learned.continuousRefused,
		ContinuousWhy:     c.learned.continuousWhy,
		TasksFollowed:     c.tasks.Load(),
	}
	if c.auth.kind == authSession && c.auth.token != "" {
		st.SessionSince = c.auth.since
	}
	if r := c.auth.refused; r != nil && time.Now().Before(r.Until) {
		st.LoginRefusedUntil = r.Until
		st.LoginRefused = r.Err.Error()
	}
	if c.sys != nil {
		st.System = c.sys.path
		st.ResetTypes = append([]string(nil), c.sys.reset.Allowed...)
		st.ResetTypesListed = c.sys.resetKnown
	}
	return st
}
