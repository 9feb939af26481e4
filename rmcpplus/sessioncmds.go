package rmcpplus

import (
	"encoding/binary"
	"errors"
	"fmt"

	"obmd/ipmi"
)

// Request and response bodies (the data after the command byte / the
// completion code) of the IPMI commands the session layer itself sends or
// answers. They are pure functions of bytes.
//
// They live here, not in package ipmi, because the session layer on both
// sides needs exactly these few and nothing else of them.

// channelCurrent is the channel number meaning "the channel this request
// arrived on" (IPMI v2.0 section 6.3, Table 6-1).
const channelCurrent = 0x0E

// lanChannel is the channel number fakebmc's LAN channel reports.
const lanChannel = 0x01

// Get Channel Authentication Capabilities, IPMI v2.0 section 22.13.

// Bits of the response's "Authentication Type Support" and "Extended
// Capabilities" bytes.
const (
	authCapsExtendedAvailable = 0x80 // byte 2 bit 7: IPMI v2.0+ extended data present
	authCapsAuthTypeNone      = 0x01 // byte 2 bit 0: v1.5 auth type "none"
	authCapsNonNullUsernames  = 0x04 // byte 3 bit 2: non-null usernames enabled
	authCapsIPMI20            = 0x02 // byte 4 bit 1: IPMI v2.0 (RMCP+) connections supported
	authCapsIPMI15            = 0x01 // byte 4 bit 0: IPMI v1.5 connections supported
)

// authCapsRequest asks for the current channel's capabilities with the
// "get IPMI v2.0+ extended data" bit (byte 1 bit 7) set.
func authCapsRequest(priv ipmi.PrivilegeLevel) []byte {
	return []byte{0x80 | channelCurrent, byte(priv) & 0x0F}
}

// channelAuthCaps is a decoded Get Channel Authentication Capabilities
// response (after the completion code).
type channelAuthCaps struct {
	Channel    uint8
	AuthTypes  uint8 // byte 2
	Status     uint8 // byte 3: per-message/user-level auth, anonymous login
	Extended   uint8 // byte 4: IPMI v1.5/v2.0 connection support
	OEMID      uint32
	OEMAuxData uint8
}

func parseAuthCaps(b []byte) (channelAuthCaps, error) {
	if len(b) < 8 {
		return channelAuthCaps{}, fmt.Errorf("Get Channel Authentication Capabilities response is %d bytes, want 8", len(b))
	}
	return channelAuthCaps{
		Channel:    b[0],
		AuthTypes:  b[1],
		Status:     b[2],
		Extended:   b[3],
		OEMID:      uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16,
		OEMAuxData: b[7],
	}, nil
}

// supportsRMCPPlus: the extended data is present and says IPMI v2.0.
func (c channelAuthCaps) supportsRMCPPlus() bool {
	return c.AuthTypes&authCapsExtendedAvailable != 0 && c.Extended&authCapsIPMI20 != 0
}

func (c channelAuthCaps) appendTo(b []byte) []byte {
	return append(b, c.Channel, c.AuthTypes, c.Status, c.Extended,
		byte(c.OEMID), byte(c.OEMID>>8), byte(c.OEMID>>16), c.OEMAuxData)
}

// Get Channel Cipher Suites, IPMI v2.0 section 22.15.

// cipherSuitesRequest asks for 16-byte chunk index of the current channel's
// cipher suite records for payload type IPMI, "list algorithms by cipher
// suite" (byte 3 bit 7).
func cipherSuitesRequest(index uint8) []byte {
	return []byte{channelCurrent, byte(PayloadIPMI), 0x80 | index&0x3F}
}

// cipherSuitesChunk is the number of record bytes per response.
const cipherSuitesChunk = 16

// Cipher suite record bytes (section 22.15, Table 22-18).
const (
	recordStandard = 0xC0 // start of a standard cipher suite record, then the suite ID
	recordOEM      = 0xC1 // start of an OEM record, then the suite ID and 3-byte IANA
	tagIntegrity   = 0x40 // integrity algorithm number tag (bits 7:6 = 01b)
	tagConf        = 0x80 // confidentiality algorithm number tag (bits 7:6 = 10b)
)

// cipherSuiteRecords returns the standard records of the given suites, in
// order; unknown IDs are skipped.
func cipherSuiteRecords(ids []uint8) []byte {
	var b []byte
	for _, id := range ids {
		cs, ok := CipherSuiteByID(id)
		if !ok {
			continue
		}
		b = append(b, recordStandard, id, byte(cs.Auth)&0x3F,
			tagIntegrity|byte(cs.Integrity)&0x3F, tagConf|byte(cs.Confidentiality)&0x3F)
	}
	return b
}

// cipherSuiteAlgorithms returns the tagged algorithm numbers of the given
// suites without duplicates: the answer when byte 3 bit 7 of the request is
// clear ("list supported algorithms").
func cipherSuiteAlgorithms(ids []uint8) []byte {
	var seen [256]bool
	var b []byte
	add := func(v byte) {
		if !seen[v] {
			seen[v] = true
			b = append(b, v)
		}
	}
	for _, id := range ids {
		cs, ok := CipherSuiteByID(id)
		if !ok {
			continue
		}
		add(byte(cs.Auth) & 0x3F)
		add(tagIntegrity | byte(cs.Integrity)&0x3F)
		add(tagConf | byte(cs.Confidentiality)&0x3F)
	}
	return b
}

// parseCipherSuiteIDs returns the suite IDs named by a concatenation of
// cipher suite records.
func parseCipherSuiteIDs(records []byte) []uint8 {
	var ids []uint8
	for i := 0; i < len(records); i++ {
		switch records[i] {
		case recordStandard:
			if i+1 < len(records) {
				ids = append(ids, records[i+1])
			}
			i++
		case recordOEM:
			if i+1 < len(records) {
				ids = append(ids, records[i+1])
			}
			i += 4 // suite ID and 3-byte IANA
		}
		// Anything else is an algorithm number of the current record.
	}
	return ids
}

// Set Session Privilege Level, IPMI v2.0 section 22.18. The request and
// response both carry one byte: the privilege level in bits 3:0 (0 in a
// request means "no change, return the present level").

// Completion codes specific to Set Session Privilege Level.
const (
	ccPrivNotAvailable   ipmi.CompletionCode = 0x80 // requested level not available for this user
	ccPrivExceedsLimit   ipmi.CompletionCode = 0x81 // exceeds channel and/or user privilege limit
	ccCloseInvalidID     ipmi.CompletionCode = 0x87 // Close Session: invalid session ID
	ccCloseInvalidHandle ipmi.CompletionCode = 0x88 // Close Session: invalid session handle
)

// Close Session, IPMI v2.0 section 22.19: the request carries the session
// ID to close (the BMC's ID, little-endian); ID 0 means "by handle", with
// the handle in a fifth byte.

func closeSessionRequest(managedID uint32) []byte {
	return binary.LittleEndian.AppendUint32(nil, managedID)
}

var errShortCloseSession = errors.New("Close Session request shorter than 4 bytes")

func parseCloseSessionRequest(b []byte) (id uint32, handle uint8, hasHandle bool, err error) {
	if len(b) < 4 {
		return 0, 0, false, errShortCloseSession
	}
	id = binary.LittleEndian.Uint32(b)
	if id == 0 && len(b) >= 5 {
		return 0, b[4], true, nil
	}
	return id, 0, false, nil
}
