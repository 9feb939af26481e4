package manager

import (
	"slices"

	"obmd/bmc"
)

// Status reports what the ipmi driver learned about its BMC (GET
// /node/{id}): the cipher suite of the last session, the quirks in effect
// (named by the operator, or detected on the wire with the evidence), and
// the sessions it holds. It does no I/O.
func (d *ipmiDriver) Status() DriverStatus {
	st := DriverStatus{
		CipherSuite: int(d.profile.Suite()),
		Sessions:    d.pool.describe(),
	}
	for _, name := range d.quirks.Names() {
		st.Quirks = append(st.Quirks, QuirkStatus{Name: name, Source: QuirkConfigured, Evidence: configuredQuirkNote(name)})
	}
	for _, q := range d.profile.Detected() {
		st.Quirks = append(st.Quirks, QuirkStatus{Name: q.Name, Source: QuirkDetected, Evidence: q.Evidence, Since: q.At.UTC()})
	}
	st.Quirks = append(st.Quirks, d.consoleQuirks()...) // what the SOL consoles learned
	details := map[string]any{}
	if p := d.profile.Privilege(); p != 0 {
		details["privilege"] = privilegeName(p)
		if p != d.info.Privilege {
			details["privilege"] = privilegeName(p) + " (" + privilegeName(d.info.Privilege) + " refused by the BMC)"
		}
	}
	if offered := d.profile.Offered(); offered != nil {
		details["offered_cipher_suites"] = slices.Clone(offered)
	}
	if n := d.profile.ChecksumsTolerated(); n > 0 {
		details["bad_checksums_accepted"] = n
	}
	if len(details) > 0 {
		st.Details = details
	}
	return st
}

// configuredQuirkNote says what a named quirk does when obmd would have
// behaved so anyway.
func configuredQuirkNote(name string) string {
	switch name {
	case bmc.QuirkOpenSessPriv, bmc.QuirkSupermicro20:
		return "always in effect: obmd behaves so without the quirk"
	}
	return ""
}

// The ipmi driver reports its status.
var _ StatusReporter = (*ipmiDriver)(nil)
