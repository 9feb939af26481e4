package rmcpplus

import (
	"encoding/binary"
	"fmt"
)

// RAKP4, section 13.23, Table 13-14: BMC to console, the last handshake
// message.
//
//	tag, status, reserved (2), remote console session ID (4), integrity
//	check value (0, 12 or 16 bytes: see RAKP4IntegrityCheck)
type RAKP4 struct {
	Tag              uint8
	Status           RAKPStatus
	ConsoleSessionID uint32
	IntegrityCheck   []byte
}

// Marshal returns the message.
func (m *RAKP4) Marshal() []byte {
	b := make([]byte, 0, rakp34MinLen+len(m.IntegrityCheck))
	b = append(b, m.Tag, uint8(m.Status), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, m.ConsoleSessionID)
	return append(b, m.IntegrityCheck...)
}

// Unmarshal decodes the message; IntegrityCheck is a copy. With a
// non-zero status only tag and status are required.
func (m *RAKP4) Unmarshal(b []byte) error {
	if len(b) < 2 {
		return fmt.Errorf("%w: RAKP Message 4 of %d bytes", ErrTruncated, len(b))
	}
	r := RAKP4{Tag: b[0], Status: RAKPStatus(b[1])}
	if len(b) < rakp34MinLen {
		if r.Status == RAKPNoErrors {
			return fmt.Errorf("%w: RAKP Message 4 of %d bytes, want at least 8", ErrTruncated, len(b))
		}
		*m = r
		return nil
	}
	r.ConsoleSessionID = binary.LittleEndian.Uint32(b[4:])
	if len(b) > rakp34MinLen {
		r.IntegrityCheck = append([]byte(nil), b[rakp34MinLen:]...)
	}
	*m = r
	return nil
}
