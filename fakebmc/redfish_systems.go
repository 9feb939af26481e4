package fakebmc

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"obmd/ipmi"
)

// The Systems collection and its one ComputerSystem (DSP8010
// ComputerSystem schema), backed by the BMC's Machine: PowerState, the
// Boot object (the IPMI boot flags of System Boot Options parameter 5,
// IPMI v2.0 section 28.13), and the Reset action (the chassis control
// actions of section 28.3).

const (
	redfishSystemID   = "1"
	redfishSystemPath = "/redfish/v1/Systems/" + redfishSystemID
	resetTarget       = redfishSystemPath + "/Actions/ComputerSystem.Reset"
	resetInfoPath     = redfishSystemPath + "/ResetActionInfo"
)

// bootTargets maps BootSourceOverrideTarget values to IPMI boot devices.
var bootTargets = []struct {
	name string
	dev  ipmi.BootDevice
}{
	{"None", ipmi.BootDeviceNone},
	{"Pxe", ipmi.BootDevicePXE},
	{"Hdd", ipmi.BootDeviceDisk},
	{"Cd", ipmi.BootDeviceCDROM},
	{"BiosSetup", ipmi.BootDeviceBIOSSetup},
	{"Diags", ipmi.BootDeviceDiagnostic},
	{"Floppy", ipmi.BootDeviceFloppy},
}

func bootTargetNames() []string {
	out := make([]string, len(bootTargets))
	for i, t := range bootTargets {
		out[i] = t.name
	}
	return out
}

func (s *redfishServer) bootEnabledValues() []string {
	if s.quirks.Has(RedfishNoContinuous) {
		return []string{"Disabled", "Once"}
	}
	return []string{"Disabled", "Once", "Continuous"}
}

// resetTypes are the ResetType values the system offers.
func (s *redfishServer) resetTypes() []string {
	types := []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle", "Nmi", "PushPowerButton", "ForceOn"}
	if s.quirks.Has(RedfishNoPowerCycle) {
		types = slices.DeleteFunc(types, func(t string) bool { return t == "PowerCycle" })
	}
	return types
}

func (s *redfishServer) systemCollection(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.type":         "#ComputerSystemCollection.ComputerSystemCollection",
		"@odata.id":           "/redfish/v1/Systems",
		"Name":                "Computer System Collection",
		"Members":             []map[string]string{odataID(redfishSystemPath)},
		"Members@odata.count": 1,
	})
}

// powerState maps the machine to the Resource schema's PowerState: a soft
// shutdown under way is PoweringOff, a power cycle's off interval and a
// slow power-on are PoweringOn.
func (s *redfishServer) powerState() string {
	s.mu.Lock()
	slow := s.slowOn != nil
	s.mu.Unlock()
	if slow {
		return "PoweringOn"
	}
	on := s.b.machine.PowerOn()
	if s.b.sim != nil && s.b.sim.Transitioning() {
		if on {
			return "PoweringOff"
		}
		return "PoweringOn"
	}
	if on {
		return "On"
	}
	return "Off"
}

// bootView reads the boot override back from the machine's boot flags.
func (s *redfishServer) bootView() (enabled, target string) {
	raw := s.b.machine.BootFlags()
	var f ipmi.BootFlags
	_ = f.Unmarshal(raw[:]) // 5 bytes always decode
	if !f.Valid {
		return "Disabled", "None"
	}
	enabled = "Once"
	if f.Persistent {
		enabled = "Continuous"
	}
	target = "None"
	for _, t := range bootTargets {
		if t.dev == f.Device {
			target = t.name
		}
	}
	return enabled, target
}

// systemView is the ComputerSystem resource and its ETag (a digest of
// the representation, so it changes whenever the state does).
func (s *redfishServer) systemView() (map[string]any, string) {
	enabled, target := s.bootView()
	sys := map[string]any{
		"@odata.type":  "#ComputerSystem.v1_20_0.ComputerSystem",
		"@odata.id":    redfishSystemPath,
		"Id":           redfishSystemID,
		"Name":         "fakebmc simulated system",
		"SystemType":   "Physical",
		"Manufacturer": "obmd",
		"Model":        "fakebmc",
		"UUID":         s.b.uuid(),
		"PowerState":   s.powerState(),
		"Boot": map[string]any{
			"BootSourceOverrideEnabled":                         enabled,
			"BootSourceOverrideTarget":                          target,
			"BootSourceOverrideMode":                            "UEFI",
			"BootSourceOverrideTarget@Redfish.AllowableValues":  bootTargetNames(),
			"BootSourceOverrideEnabled@Redfish.AllowableValues": s.bootEnabledValues(),
		},
		"Actions": map[string]any{
			"#ComputerSystem.Reset": map[string]any{
				"target":                            resetTarget,
				"ResetType@Redfish.AllowableValues": s.resetTypes(),
				"@Redfish.ActionInfo":               resetInfoPath,
			},
		},
	}
	data, _ := json.Marshal(sys)
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	sys["@odata.etag"] = etag
	return sys, etag
}

func (s *redfishServer) getSystem(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != redfishSystemID {
		s.notFound(w, r)
		return
	}
	sys, etag := s.systemView()
	w.Header().Set("ETag", etag)
	writeJSON(w, http.StatusOK, sys)
}

func (s *redfishServer) resetActionInfo(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != redfishSystemID {
		s.notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.type": "#ActionInfo.v1_3_0.ActionInfo",
		"@odata.id":   resetInfoPath,
		"Id":          "ResetActionInfo",
		"Name":        "Reset Action Info",
		"Parameters": []map[string]any{{
			"Name":            "ResetType",
			"Required":        true,
			"DataType":        "String",
			"AllowableValues": s.resetTypes(),
		}},
	})
}

// patchSystem applies a PATCH of the Boot object to the boot flags.
func (s *redfishServer) patchSystem(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != redfishSystemID {
		s.notFound(w, r)
		return
	}
	// DSP0266 "ETags": If-Match must name the current ETag; the
	// etag-required quirk also refuses a PATCH without one.
	_, etag := s.systemView()
	ifMatch := r.Header.Get("If-Match")
	if (ifMatch == "" && s.quirks.Has(RedfishETagRequired)) || (ifMatch != "" && ifMatch != "*" && !etagListed(ifMatch, etag)) {
		s.mu.Lock()
		s.stats.PreconditionFailed++
		s.mu.Unlock()
		writeRedfishError(w, http.StatusPreconditionFailed, baseMessage("PreconditionFailed",
			"The ETag supplied did not match the ETag required to change this resource.",
			"Try the operation again using the appropriate ETag."))
		return
	}
	var req struct {
		Boot *struct {
			Target  *string `json:"BootSourceOverrideTarget"`
			Enabled *string `json:"BootSourceOverrideEnabled"`
			Mode    *string `json:"BootSourceOverrideMode"`
		} `json:"Boot"`
	}
	if !decodeRedfishBody(w, r, &req) {
		return
	}
	if req.Boot == nil {
		writeRedfishError(w, http.StatusBadRequest, baseMessage("PropertyMissing",
			"The property Boot is a required property and must be included in the request.",
			"Ensure that the property is in the request body and has a valid value and resubmit the request.", "Boot"))
		return
	}
	raw := s.b.machine.BootFlags()
	var f ipmi.BootFlags
	_ = f.Unmarshal(raw[:])
	if t := req.Boot.Target; t != nil {
		i := slices.IndexFunc(bootTargets, func(bt struct {
			name string
			dev  ipmi.BootDevice
		}) bool {
			return bt.name == *t
		})
		if i < 0 {
			writeRedfishError(w, http.StatusBadRequest, valueNotInList(*t, "BootSourceOverrideTarget"))
			return
		}
		f.Device = bootTargets[i].dev
		if req.Boot.Enabled == nil && !f.Valid {
			f.Valid = true // a target alone sets a one-time override
		}
	}
	if e := req.Boot.Enabled; e != nil {
		if !slices.Contains(s.bootEnabledValues(), *e) {
			writeRedfishError(w, http.StatusBadRequest, valueNotInList(*e, "BootSourceOverrideEnabled"))
			return
		}
		switch *e {
		case "Disabled":
			f.Valid, f.Persistent = false, false
		case "Once":
			f.Valid, f.Persistent = true, false
		case "Continuous":
			f.Valid, f.Persistent = true, true
		}
	}
	if m := req.Boot.Mode; m != nil {
		if *m != "UEFI" && *m != "Legacy" {
			writeRedfishError(w, http.StatusBadRequest, valueNotInList(*m, "BootSourceOverrideMode"))
			return
		}
		f.EFI = *m == "UEFI"
	}
	var flags [5]byte
	copy(flags[:], f.Marshal())
	if err := s.b.machine.SetBootFlags(flags); err != nil {
		writeRedfishError(w, http.StatusInternalServerError, baseMessage("InternalError",
			"The request failed due to an internal service error: "+err.Error(), "Resubmit the request."))
		return
	}
	s.mu.Lock()
	s.stats.BootPatches++
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// etagListed reports whether an If-Match list names etag (weak or not).
func etagListed(ifMatch, etag string) bool {
	for _, e := range strings.Split(ifMatch, ",") {
		if strings.TrimPrefix(strings.TrimSpace(e), "W/") == etag {
			return true
		}
	}
	return false
}

func valueNotInList(value, prop string) map[string]any {
	return baseMessage("PropertyValueNotInList",
		fmt.Sprintf("The value %s for the property %s is not in the list of acceptable values.", value, prop),
		"Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.",
		value, prop)
}

// reset is ComputerSystem.Reset.
func (s *redfishServer) reset(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != redfishSystemID {
		s.notFound(w, r)
		return
	}
	var req struct {
		ResetType *string `json:"ResetType"`
	}
	if !decodeRedfishBody(w, r, &req) {
		return
	}
	if req.ResetType == nil {
		writeRedfishError(w, http.StatusBadRequest, baseMessage("ActionParameterMissing",
			"The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.",
			"Supply the action with the required parameter in the request body when the request is resubmitted.", "ComputerSystem.Reset", "ResetType"))
		return
	}
	t := *req.ResetType
	if !slices.Contains(s.resetTypes(), t) {
		writeRedfishError(w, http.StatusBadRequest, baseMessage("ActionParameterValueNotInList",
			fmt.Sprintf("The value %s for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values.", t),
			"Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.",
			t, "ResetType", "ComputerSystem.Reset"))
		return
	}
	if s.quirks.Has(RedfishTask202) {
		s.startTask(w, t)
		return
	}
	if err := s.doReset(t); err != nil {
		writeRedfishError(w, http.StatusConflict, baseMessage("ActionNotSupported",
			"The action ComputerSystem.Reset is not supported by the resource: "+err.Error(),
			"The action supplied cannot be resubmitted to the implementation.", "ComputerSystem.Reset"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// doReset performs a reset type on the machine.
func (s *redfishServer) doReset(t string) error {
	m := s.b.machine
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("the BMC is shutting down")
	}
	s.stats.Resets[t]++
	if t != "On" && t != "ForceOn" && s.slowOn != nil {
		// Any other action supersedes a power-on in progress.
		s.slowOn.Stop()
		s.slowOn = nil
	}
	s.mu.Unlock()
	switch t {
	case "On", "ForceOn":
		if m.PowerOn() && (s.b.sim == nil || !s.b.sim.Transitioning()) {
			return nil
		}
		if s.quirks.Has(RedfishSlowPowerOn) && !m.PowerOn() {
			s.mu.Lock()
			if s.slowOn == nil {
				var timer *time.Timer
				timer = time.AfterFunc(s.cfg.SlowPowerOn, func() {
					s.mu.Lock()
					current := s.slowOn == timer
					if current {
						s.slowOn = nil
					}
					s.mu.Unlock()
					if current {
						_ = m.PowerUp()
					}
				})
				s.slowOn = timer
			}
			s.mu.Unlock()
			return nil
		}
		return m.PowerUp()
	case "ForceOff":
		return m.PowerDown()
	case "GracefulShutdown":
		return m.SoftOff()
	case "ForceRestart":
		return m.HardReset()
	case "PowerCycle":
		return m.PowerCycle()
	case "Nmi":
		return m.PulseDiagInterrupt()
	case "PushPowerButton":
		if m.PowerOn() {
			return m.SoftOff()
		}
		return m.PowerUp()
	}
	return fmt.Errorf("reset type %s is not implemented", t)
}
