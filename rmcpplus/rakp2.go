package rmcpplus

import (
	"encoding/binary"
	"fmt"
)

const rakp2MinLen = 40

// RAKP2, section 13.21, Table 13-12: BMC to console.
//
//	tag, status, reserved (2), remote console session ID (4), managed
//	system random number Rc (16), managed system GUID (16), key exchange
//	authentication code (0, 20 or 32 bytes: see RAKP2AuthCode)
//
// With a non-zero status a BMC may send only the first 8 bytes, and
// Unmarshal accepts that; Marshal writes the fixed fields anyway, as
// ipmi_sim does (its "unauthorized name" RAKP 2 has every field, auth
// code included).
type RAKP2 struct {
	Tag              uint8
	Status           RAKPStatus
	ConsoleSessionID uint32
	ManagedRandom    [16]byte
	ManagedGUID      [16]byte
	AuthCode         []byte
}

// Marshal returns the message.
func (m *RAKP2) Marshal() []byte {
	b := make([]byte, 0, rakp2MinLen+len(m.AuthCode))
	b = append(b, m.Tag, uint8(m.Status), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, m.ConsoleSessionID)
	b = append(b, m.ManagedRandom[:]...)
	b = append(b, m.ManagedGUID[:]...)
	return append(b, m.AuthCode...)
}

// Unmarshal decodes the message; AuthCode is a copy. The auth code's
// length is checked against the negotiated algorithm by the caller
// (AuthCodeLen).
func (m *RAKP2) Unmarshal(b []byte) error {
	if len(b) < 2 {
		return fmt.Errorf("%w: RAKP Message 2 of %d bytes", ErrTruncated, len(b))
	}
	r := RAKP2{Tag: b[0], Status: RAKPStatus(b[1])}
	if r.Status != RAKPNoErrors {
		if len(b) >= rakpErrorLen {
			r.ConsoleSessionID = binary.LittleEndian.Uint32(b[4:])
		}
		*m = r
		return nil
	}
	if len(b) < rakp2MinLen {
		return fmt.Errorf("%w: RAKP Message 2 of %d bytes, want at least 40", ErrTruncated, len(b))
	}
	r.ConsoleSessionID = binary.LittleEndian.Uint32(b[4:])
	copy(r.ManagedRandom[:], b[8:24])
	copy(r.ManagedGUID[:], b[24:40])
	if len(b) > rakp2MinLen {
		r.AuthCode = append([]byte(nil), b[rakp2MinLen:]...)
	}
	*m = r
	return nil
}
