package fakebmc

import (
	"encoding/binary"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
	"obmd/sol"
)

// solConfig holds the SOL Configuration Parameters (IPMI v2.0 section 26.3,
// Table 26-5) of the LAN channel. Guarded by BMC.mu.
type solConfig struct {
	setInProgress uint8
	enabled       bool    // param 1
	auth          uint8   // param 2: [7] force encryption, [6] force authentication, [3:0] privilege
	accumulate    [2]byte // param 3: interval in 5 ms units, send threshold in characters
	retry         [2]byte // param 4: [2:0] retry count, interval in 10 ms units
	nvBitRate     uint8   // param 5
	vBitRate      uint8   // param 6
}

// defaultSOLConfig is SOL enabled for users at USER privilege without
// forced encryption (so cipher suites 1 and 2, which have none, can use
// it), 60 ms / 96 characters accumulation, 7 retries at 500 ms, and the
// console's speed. The retry parameter drives the BMC's SOL
// retransmission; the accumulation parameter is stored only (output
// leaves at the console's pace).
func defaultSOLConfig(baud int) solConfig {
	rate := solBitRate(baud)
	return solConfig{
		enabled:    true,
		auth:       uint8(ipmi.PrivilegeUser),
		accumulate: [2]byte{12, 96},
		retry:      [2]byte{7, 50},
		nvBitRate:  rate,
		vBitRate:   rate,
	}
}

// solBitRate is the bit rate code of SOL params 5 and 6 for a baud rate;
// rates without a code read "use the IPMI-over-serial setting".
func solBitRate(baud int) uint8 {
	switch baud {
	case 9600:
		return ipmi.SOLBitRate9600
	case 19200:
		return ipmi.SOLBitRate19200
	case 38400:
		return ipmi.SOLBitRate38400
	case 57600:
		return ipmi.SOLBitRate57600
	case 115200:
		return ipmi.SOLBitRate115200
	}
	return ipmi.SOLBitRateSerial
}

// solParamLen is the data length of each writable SOL parameter.
var solParamLen = map[uint8]int{
	ipmi.SOLParamSetInProgress:      1,
	ipmi.SOLParamEnable:             1,
	ipmi.SOLParamAuthentication:     1,
	ipmi.SOLParamCharAccumulate:     2,
	ipmi.SOLParamRetry:              2,
	ipmi.SOLParamNonVolatileBitRate: 1,
	ipmi.SOLParamVolatileBitRate:    1,
}

// getSOLConfigParams serves Get SOL Configuration Parameters (IPMI v2.0
// section 26.3) for parameters 0 to 8, the ones `ipmitool sol info` reads.
func (b *BMC) getSOLConfigParams(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.GetSOLConfigParamsReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	if !validChannel(req.Channel) {
		return ipmi.CCInvalidDataField, nil
	}
	rsp := ipmi.GetSOLConfigParamsRsp{Revision: ipmi.SOLParamRevision}
	if req.RevisionOnly {
		return ipmi.CCOK, rsp.Marshal()
	}
	b.mu.Lock()
	c := b.sol
	b.mu.Unlock()
	switch req.Param {
	case ipmi.SOLParamSetInProgress:
		rsp.Data = []byte{c.setInProgress}
	case ipmi.SOLParamEnable:
		rsp.Data = []byte{bit(c.enabled)}
	case ipmi.SOLParamAuthentication:
		rsp.Data = []byte{c.auth}
	case ipmi.SOLParamCharAccumulate:
		rsp.Data = c.accumulate[:]
	case ipmi.SOLParamRetry:
		rsp.Data = c.retry[:]
	case ipmi.SOLParamNonVolatileBitRate:
		rsp.Data = []byte{c.nvBitRate}
	case ipmi.SOLParamVolatileBitRate:
		rsp.Data = []byte{c.vBitRate}
	case ipmi.SOLParamPayloadChannel:
		rsp.Data = []byte{lanChannel}
	case ipmi.SOLParamPayloadPort:
		rsp.Data = binary.LittleEndian.AppendUint16(nil, uint16(b.addr.Port))
	default:
		return ccParamNotSupported, nil
	}
	return ipmi.CCOK, rsp.Marshal()
}

// setSOLConfigParams serves Set SOL Configuration Parameters (IPMI v2.0
// section 26.2) for parameters 0 to 6; the payload channel and port
// (7, 8) are read-only here (0x82). Turning SOL Enable (1) off ends the
// active instance, whoever holds it, as on real BMCs: the way to free an
// instance Deactivate Payload cannot.
func (b *BMC) setSOLConfigParams(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.SetSOLConfigParamsReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	if !validChannel(req.Channel) {
		return ipmi.CCInvalidDataField, nil
	}
	if req.Param == ipmi.SOLParamPayloadChannel || req.Param == ipmi.SOLParamPayloadPort {
		return ccParamReadOnly, nil
	}
	want, ok := solParamLen[req.Param]
	if !ok {
		return ccParamNotSupported, nil
	}
	if len(req.Data) != want {
		return ipmi.CCDataLengthInvalid, nil
	}
	d := req.Data
	var ended *solPayload // the instance turning SOL off ends
	cc := func() ipmi.CompletionCode {
		b.mu.Lock()
		defer b.mu.Unlock()
		c := &b.sol
		switch req.Param {
		case ipmi.SOLParamSetInProgress:
			switch v := d[0] & 3; v {
			case ipmi.SetComplete, ipmi.CommitWrite:
				c.setInProgress = ipmi.SetComplete
			case ipmi.SetInProgress:
				c.setInProgress = v
			default:
				return ipmi.CCInvalidDataField
			}
		case ipmi.SOLParamEnable:
			c.enabled = d[0]&1 != 0
			if !c.enabled {
				// Turning SOL off ends the active instance, whoever holds
				// it (deactivate takes b.mu: once it is released).
				ended = b.active
			}
		case ipmi.SOLParamAuthentication:
			p := ipmi.PrivilegeLevel(d[0] & 0x0F)
			if p < ipmi.PrivilegeUser || p > ipmi.PrivilegeOEM {
				return ipmi.CCInvalidDataField
			}
			c.auth = d[0] & 0xCF
		case ipmi.SOLParamCharAccumulate:
			if d[0] == 0 { // Table 26-5: 00h is reserved for the interval
				return ipmi.CCInvalidDataField
			}
			c.accumulate = [2]byte(d)
		case ipmi.SOLParamRetry:
			c.retry = [2]byte{d[0] & 7, d[1]}
		case ipmi.SOLParamNonVolatileBitRate, ipmi.SOLParamVolatileBitRate:
			rate := d[0] & 0x0F
			if rate != ipmi.SOLBitRateSerial && (rate < ipmi.SOLBitRate9600 || rate > ipmi.SOLBitRate115200) {
				return ipmi.CCInvalidDataField
			}
			if req.Param == ipmi.SOLParamVolatileBitRate {
				c.vBitRate = rate
			} else {
				c.nvBitRate = rate
			}
		}
		return ipmi.CCOK
	}()
	if ended != nil {
		b.deactivate(ended, "SOL disabled")
	}
	return cc, nil
}

func bit(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Command-specific completion codes of Activate Payload (IPMI v2.0
// section 24.1) and Deactivate Payload (section 24.2).
const (
	ccPayloadActive      = ipmi.CCPayloadAlreadyActive // 80h: already active on another session
	ccPayloadDisabled    = ipmi.CCPayloadDisabled      // 81h: payload type disabled
	ccEncryptionRequired = ipmi.CompletionCode(0x83)   // 83h: activation requires encryption
	ccPayloadNotActive   = ipmi.CompletionCode(0x80)   // Deactivate: payload already deactivated
)

// The SOL payload of the LAN channel.
const (
	solInstance uint8 = 1 // the one SOL instance
	// solInboundPayloadSize is the largest SOL payload the BMC takes: the
	// 4-byte header and 251 characters. ipmitool sends up to this many
	// characters after the header, 255, which one accepted-count byte
	// still acknowledges.
	solInboundPayloadSize uint16 = 255
	// solOutboundPayloadSize is the largest the BMC sends: header and
	// sol.MaxCharacters.
	solOutboundPayloadSize  uint16 = 4 + 255
	solDeactivatedByCommand        = "Deactivate Payload"
)

// solPayload is the active SOL payload instance.
type solPayload struct {
	sess    session
	user    string
	port    *sol.BMCEndpoint
	ended   chan struct{} // closed by deactivate
	phantom bool          // held by LeaveStaleSOL's vanished client; guarded by BMC.mu
}

// activatePayload serves Activate Payload (IPMI v2.0 section 24.1) for SOL
// instance 1: it checks the SOL configuration (enabled, privilege, forced
// encryption), refuses with 80h while another activation holds the
// payload, attaches the serial console to the session and answers the
// payload sizes and the UDP port, the BMC's own. The activation ends with
// Deactivate Payload or when its session ends, whichever comes first.
func (b *BMC) activatePayload(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.ActivatePayloadReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	if req.PayloadType != ipmi.PayloadTypeSOL || req.Instance != solInstance {
		return ipmi.CCInvalidDataField, nil
	}
	b.mu.Lock()
	cfg := b.sol
	switch {
	case !cfg.enabled:
		b.mu.Unlock()
		return ccPayloadDisabled, nil
	case r.sess.Privilege() < ipmi.PrivilegeLevel(cfg.auth&0x0F):
		b.mu.Unlock()
		return ipmi.CCInsufficientPrivilege, nil
	case cfg.auth&ipmi.SOLForceEncryption != 0 && !req.SOLEncrypt():
		b.mu.Unlock()
		return ccEncryptionRequired, nil
	case b.active != nil:
		b.mu.Unlock()
		return ccPayloadActive, nil
	case b.refusesSOLAux(req.Aux):
		b.mu.Unlock()
		return ipmi.CCInvalidDataField, nil
	}
	sess := r.sess
	p := &solPayload{sess: sess, user: sess.Username(), ended: make(chan struct{})}
	path := newSOLPayloadPath(b)
	p.port = sol.NewBMCEndpoint(sol.EndpointConfig{
		Send: func(payload []byte) error {
			if !path.out(payload) {
				return nil // lost on the way
			}
			return sess.SendPayload(rmcpplus.PayloadSOL, payload)
		},
		MaxData: sol.MaxDataForPayloadSize(int(solOutboundPayloadSize)),
		// SOL configuration parameter 4 (Table 26-5): retry count, and
		// the interval in 10 ms units (BMCConfig.SOLRetryUnit in tests).
		RetryInterval: time.Duration(cfg.retry[1]) * b.solRetryUnit(),
		Retries:       int(cfg.retry[0] & 7),
		AcceptMax:     b.cfg.SOLAcceptMax,
		OnEvent: func(ev sol.Event) {
			b.log.Debug("SOL event", "session", sess.ID(), "event", ev.String())
			if ev == sol.EventBreakRequested {
				b.console.noteBreak()
			}
		},
		Logger: b.log,
	})
	// Set before the response leaves, so the console's first SOL packet
	// finds its handler.
	sess.SetPayloadHandler(rmcpplus.PayloadSOL, func(payload []byte) {
		if path.in(payload) {
			p.port.HandlePayload(payload)
		}
	})
	b.console.attach(p.port, time.Now())
	b.active = p
	b.notifySOLLocked()
	b.mu.Unlock()

	go func() {
		select {
		case <-r.sess.Done():
			if b.cfg.Quirks.Has(QuirkDeactivateIgnored) {
				return // the instance outlives its session (OpenBMC)
			}
			b.deactivate(p, "session ended")
		case <-p.ended:
		}
	}()
	b.log.Info("SOL activated", "session", r.sess.ID(), "user", p.user, "encrypt", req.SOLEncrypt())
	in, out := b.solPayloadSizes()
	rsp := ipmi.ActivatePayloadRsp{
		InboundPayloadSize:  in,
		OutboundPayloadSize: out,
		Port:                b.solReportedPort(),
		VLAN:                ipmi.NoVLAN,
	}
	return ipmi.CCOK, rsp.Marshal()
}

// deactivatePayload serves Deactivate Payload (IPMI v2.0 section 24.2).
// Any session of the user who activated SOL, or an administrator's, may
// end it: that is how a client clears an activation its killed
// predecessor left behind.
func (b *BMC) deactivatePayload(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.DeactivatePayloadReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	if req.PayloadType != ipmi.PayloadTypeSOL || req.Instance != solInstance {
		return ipmi.CCInvalidDataField, nil
	}
	b.mu.Lock()
	p := b.active
	b.mu.Unlock()
	if p == nil {
		return ccPayloadNotActive, nil
	}
	if p.user != r.sess.Username() && r.sess.Privilege() < ipmi.PrivilegeAdministrator {
		return ipmi.CCInsufficientPrivilege, nil
	}
	if b.cfg.Quirks.Has(QuirkDeactivateIgnored) {
		b.log.Info("Deactivate Payload ignored (deactivate-ignored)", "session", r.sess.ID())
		return ipmi.CCOK, nil
	}
	b.deactivate(p, solDeactivatedByCommand)
	return ipmi.CCOK, nil
}

// deactivate ends activation p if it is still the active one. The console
// is detached (the endpoint closed, telling the client "SOL deactivating",
// and the host's goroutines gone) before b.mu is released, so a new
// activation never overlaps the old one. The host's goroutines never take
// b.mu, so waiting for them here cannot deadlock.
func (b *BMC) deactivate(p *solPayload, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active != p {
		return
	}
	p.sess.SetPayloadHandler(rmcpplus.PayloadSOL, nil)
	b.console.detach(p.port, time.Now())
	b.active = nil
	close(p.ended)
	b.notifySOLLocked()
	b.log.Info("SOL deactivated", "session", p.sess.ID(), "reason", why)
}

func (b *BMC) notifySOLLocked() {
	close(b.solChange)
	b.solChange = make(chan struct{})
}

// getPayloadActivationStatus serves Get Payload Activation Status (IPMI
// v2.0 section 24.4): one SOL instance, active or not.
func (b *BMC) getPayloadActivationStatus(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.GetPayloadActivationStatusReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	if req.PayloadType != ipmi.PayloadTypeSOL {
		return ipmi.CCInvalidDataField, nil
	}
	rsp := ipmi.GetPayloadActivationStatusRsp{InstanceCapacity: 1}
	b.mu.Lock()
	active := b.active != nil || b.stealing != 0
	b.mu.Unlock()
	if active && !b.solStatusLies() {
		rsp.Active = 1 << (solInstance - 1)
	}
	return ipmi.CCOK, rsp.Marshal()
}

// getPayloadInstanceInfo serves Get Payload Instance Info (IPMI v2.0
// section 24.5): the session the SOL instance is active for (0: none) and
// the serial port it is attached to, 1.
func (b *BMC) getPayloadInstanceInfo(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.GetPayloadInstanceInfoReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	if req.PayloadType != ipmi.PayloadTypeSOL || req.Instance != solInstance {
		return ipmi.CCInvalidDataField, nil
	}
	rsp := ipmi.GetPayloadInstanceInfoRsp{Info: [8]byte{1}}
	b.mu.Lock()
	switch {
	case b.active != nil:
		rsp.SessionID = b.active.sess.ID()
	case b.stealing != 0:
		rsp.SessionID = b.stealing
	}
	b.mu.Unlock()
	return ipmi.CCOK, rsp.Marshal()
}

// solRetryUnit is the unit of SOL configuration parameter 4's retry
// interval: 10 ms per IPMI v2.0 section 26.3, Table 26-5, unless the
// configuration says otherwise.
func (b *BMC) solRetryUnit() time.Duration {
	if b.cfg.SOLRetryUnit > 0 {
		return b.cfg.SOLRetryUnit
	}
	return 10 * time.Millisecond
}
