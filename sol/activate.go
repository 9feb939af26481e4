package sol

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"obmd/ipmi"
)

// Activation: Activate Payload (IPMI v2.0 section 24.1) with the answers
// real BMCs give to a plain request (BMC-QUIRKS.md, "Serial over LAN"):
//
//   - 80h "already active": the instance is held by another session (a
//     client that died, or one still running). Deactivate Payload from this
//     session (section 24.2) frees it; a bounded number of times.
//   - 80h again after a Deactivate Payload answered 00h: the BMC ignored
//     the deactivation (Dell M6xx, Supermicro H8QME; OpenBMC keeps an
//     instance whose session is gone). Turning SOL off and on (Set SOL
//     Configuration Parameters, parameter 1 "SOL Enable", section 26.2)
//     ends every instance; once, then activate.
//   - any refusal of the auxiliary data: some boards want the CTS/DCD/DSR
//     handshake bit clear (Intel; ipmitool -o intelplus, FreeIPMI -W
//     intel20), the Intel 82571 pass-through NIC wants exactly 08h
//     (ipmitool -o i82571spt). Each alternative is tried once.
//   - payload sizes outside what SOL allows (a 4-byte header and 1 to 255
//     characters): a safe default instead.

// SafePayloadSize is the SOL payload size assumed towards a BMC that
// reports a nonsense inbound size: a 4-byte header and 28 characters,
// FreeIPMI's choice for its "solpayloadsize" workaround; small because a
// BMC that reports nonsense is unlikely to take large packets.
const SafePayloadSize = 32

// sensiblePayloadSize reports whether size can be a SOL payload size: the
// header and 1 to MaxCharacters characters.
func sensiblePayloadSize(size int) bool {
	return size > HeaderLen && size <= HeaderLen+MaxCharacters
}

// auxAlternatives lists the auxiliary data to try, in order: first (a
// value a BMC accepted before, if any), the default (ipmitool's), the
// default with the handshake bit clear, and the 82571's 08h. Duplicates
// are dropped.
func auxAlternatives(first *[4]byte, def [4]byte) [][4]byte {
	cands := [][4]byte{def, {def[0] &^ ipmi.SOLAuxHandshakeDeasserted}, {ipmi.SOLAuxSerialAlertSucceed}}
	if first != nil {
		cands = append([][4]byte{*first}, cands...)
	}
	var out [][4]byte
	for _, c := range cands {
		dup := false
		for _, o := range out {
			dup = dup || o == c
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

// refusesAux reports whether an Activate Payload completion code may be a
// refusal of the auxiliary data, worth trying the alternatives for: invalid
// data or a parameter out of range, or a code that gives no reason. Codes
// with another meaning (already active, disabled, limit reached,
// encryption, privilege, unknown command) are not.
func refusesAux(code ipmi.CompletionCode) bool {
	switch code {
	case ipmi.CCInvalidDataField, 0xC9, 0xD5, 0xD6, ipmi.CCUnspecified:
		return true
	}
	return false
}

type doFunc func(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error)

// activate sends Activate Payload, taking over an activation held by
// another session and trying the auxiliary data alternatives as above.
// note records what it had to do.
func activate(ctx context.Context, do doFunc, opts ConsoleOptions, def [4]byte, note func(Adaptation)) (Activation, error) {
	auxes := auxAlternatives(opts.Aux, def)
	ai := 0
	takeOvers := 0
	toggled := false
	var toggleErr error
	var refused []string
	for {
		req := ipmi.ActivatePayloadReq{PayloadType: ipmi.PayloadTypeSOL, Instance: opts.Instance, Aux: auxes[ai]}
		data, err := do(ctx, ipmi.NetFnApp, ipmi.CmdActivatePayload, req.Marshal())
		var ce *ipmi.CompletionError
		errors.As(err, &ce)
		switch {
		case ce != nil && ce.Code == ipmi.CCPayloadAlreadyActive && *opts.TakeOver && takeOvers > 0 && !toggled:
			// Deactivate Payload answered but changed nothing.
			toggled = true
			opts.Logger.Info("SOL still active for another session after Deactivate Payload; turning SOL Enable off and on",
				"instance", opts.Instance)
			if toggleErr = toggleSOLEnable(ctx, do); toggleErr != nil {
				// Not fatal: the bounded takeover goes on.
				opts.Logger.Info("toggling SOL Enable failed", "err", toggleErr)
				continue
			}
			note(Adaptation{Quirk: QuirkDeactivateIgnored,
				Evidence: "Deactivate Payload answered 00h but Activate Payload still answered 80h; SOL Enable turned off and on"})
			continue
		case ce != nil && ce.Code == ipmi.CCPayloadAlreadyActive && *opts.TakeOver && takeOvers < opts.MaxTakeOverAttempts:
			takeOvers++
			opts.Logger.Info("SOL payload active for another session; deactivating it to take it over",
				"instance", opts.Instance, "attempt", takeOvers)
			if derr := deactivateCtx(ctx, do, opts.Instance); derr != nil {
				return Activation{}, fmt.Errorf("sol: SOL payload active for another session and taking it over failed: %w", derr)
			}
			continue
		case ce != nil && ce.Code == ipmi.CCPayloadAlreadyActive:
			if toggleErr != nil {
				return Activation{}, fmt.Errorf("sol: %w (after %d takeover attempts; toggling SOL Enable failed: %v)", err, takeOvers, toggleErr)
			}
			return Activation{}, fmt.Errorf("sol: %w (after %d takeover attempts)", err, takeOvers)
		case ce != nil && refusesAux(ce.Code) && ai+1 < len(auxes):
			refused = append(refused, fmt.Sprintf("%02X (%02Xh)", auxes[ai][0], uint8(ce.Code)))
			ai++
			opts.Logger.Info("Activate Payload refused the auxiliary data; trying an alternative",
				"refused", fmt.Sprintf("%02X", auxes[ai-1][0]), "code", ce.Code.String(), "next", fmt.Sprintf("%02X", auxes[ai][0]))
			continue
		case err != nil:
			if len(refused) > 0 {
				return Activation{}, fmt.Errorf("sol: activating SOL (auxiliary data %s refused): %w", strings.Join(refused, ", "), err)
			}
			return Activation{}, fmt.Errorf("sol: activating SOL: %w", err)
		}
		var rsp ipmi.ActivatePayloadRsp
		if err := rsp.Unmarshal(data); err != nil {
			return Activation{}, fmt.Errorf("sol: activating SOL: %w", err)
		}
		if len(refused) > 0 {
			note(Adaptation{Quirk: QuirkCTSAux, Evidence: fmt.Sprintf(
				"Activate Payload refused auxiliary data %s, accepted %02X", strings.Join(refused, ", "), auxes[ai][0])})
		}
		if takeOvers > 0 {
			note(Adaptation{Quirk: QuirkStaleActivation,
				Evidence: "SOL was active for another session; took it over"})
		}
		return Activation{
			Instance:            opts.Instance,
			InboundPayloadSize:  int(rsp.InboundPayloadSize),
			OutboundPayloadSize: int(rsp.OutboundPayloadSize),
			Port:                int(rsp.Port),
			TakeOvers:           takeOvers,
			EnableToggled:       toggled,
			Aux:                 auxes[ai],
		}, nil
	}
}

// toggleSOLEnable turns SOL off and on again on the session's channel (Set
// SOL Configuration Parameters, parameter 1; IPMI v2.0 section 26.2, Table
// 26-5), which ends every SOL instance, as ipmitool's `sol set enabled`
// would. The second write is attempted even if the first failed, so SOL
// is never left off by us.
func toggleSOLEnable(ctx context.Context, do doFunc) error {
	set := func(on bool) error {
		v := byte(0)
		if on {
			v = 1
		}
		req := ipmi.SetSOLConfigParamsReq{Channel: ipmi.ChannelCurrent, Param: ipmi.SOLParamEnable, Data: []byte{v}}
		_, err := do(ctx, ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams, req.Marshal())
		return err
	}
	offErr := set(false)
	onErr := set(true)
	switch {
	case onErr != nil:
		return fmt.Errorf("turning SOL Enable back on: %w", onErr)
	case offErr != nil:
		return fmt.Errorf("turning SOL Enable off: %w", offErr)
	}
	return nil
}

// deactivateCtx sends Deactivate Payload (IPMI v2.0 section 24.2); 0x80
// "already deactivated" counts as success.
func deactivateCtx(ctx context.Context, do doFunc, instance uint8) error {
	req := ipmi.DeactivatePayloadReq{PayloadType: ipmi.PayloadTypeSOL, Instance: instance}
	_, err := do(ctx, ipmi.NetFnApp, ipmi.CmdDeactivatePayload, req.Marshal())
	var ce *ipmi.CompletionError
	if errors.As(err, &ce) && ce.Code == 0x80 {
		return nil
	}
	return err
}

func deactivate(do doFunc, instance uint8) error {
	ctx, cancel := context.WithTimeout(context.Background(), deactivateTimeout)
	defer cancel()
	return deactivateCtx(ctx, do, instance)
}

// solPort decides where SOL packets go after Activate Payload named port
// (IPMI v2.0 section 24.1, bytes 10:11) on a session at sessionPort (0:
// unknown). It returns the port to open the payload for (0: the
// session's) and whether the BMC may serve either (the named one and the
// session's: try both, keep the one that answers). The byte-swap rule
// follows ipmitool, which maps a byte-swapped session port back (Supermicro
// X8DTH-iF and at least one open-source BMC store it in the wrong order).
func solPort(port, sessionPort int, ignore bool) (open int, either bool, swapped bool) {
	switch {
	case ignore, port == 0, port == sessionPort:
		return 0, false, false
	case sessionPort == 0:
		return port, false, false // nothing to compare with: as reported
	case int(bits.ReverseBytes16(uint16(port))) == sessionPort:
		return 0, false, true
	}
	return port, true, false
}
