package rmcpplus

import (
	"encoding/binary"
	"fmt"
)

const rakp34MinLen = 8

// RAKP3, section 13.22, Table 13-13: console to BMC.
//
//	tag, status, reserved (2), managed system session ID (4), key
//	exchange authentication code (0, 20 or 32 bytes: see RAKP3AuthCode)
//
// A console that rejects RAKP 2 sends a non-zero status and no auth code.
type RAKP3 struct {
	Tag              uint8
	Status           RAKPStatus
	ManagedSessionID uint32
	AuthCode         []byte
}

// Marshal returns the message.
func (m *RAKP3) Marshal() []byte {
	b := make([]byte, 0, rakp34MinLen+len(m.AuthCode))
	b = append(b, m.Tag, uint8(m.Status), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, m.ManagedSessionID)
	return append(b, m.AuthCode...)
}

// Unmarshal decodes the message; AuthCode is a copy.
func (m *RAKP3) Unmarshal(b []byte) error {
	if len(b) < rakp34MinLen {
		return fmt.Errorf("%w: RAKP Message 3 of %d bytes, want at least 8", ErrTruncated, len(b))
	}
	r := RAKP3{
		Tag:              b[0],
		Status:           RAKPStatus(b[1]),
		ManagedSessionID: binary.LittleEndian.Uint32(b[4:]),
	}
	if len(b) > rakp34MinLen {
		r.AuthCode = append([]byte(nil), b[rakp34MinLen:]...)
	}
	*m = r
	return nil
}
