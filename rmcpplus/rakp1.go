package rmcpplus

import (
	"encoding/binary"
	"fmt"
)

// Role byte of RAKP 1, section 13.20: bits 3:0 the requested maximum
// privilege, bit 4 "name-only lookup" (look the user up by name alone
// rather than by name and privilege).
const (
	RoleNameOnlyLookup uint8 = 0x10
	rolePrivilegeMask  uint8 = 0x0F

	// MaxUsernameLength is the longest user name RAKP 1 carries.
	MaxUsernameLength = 16

	rakp1MinLen = 28
)

// RAKP1, section 13.20, Table 13-11: console to BMC.
//
//	tag, reserved (3), managed system session ID (4), remote console
//	random number Rm (16), requested role (ROLEm), reserved (2), user
//	name length, user name (0-16 bytes)
//
// Role is the whole byte (privilege | 0x10 name-only lookup): it enters
// the RAKP HMACs as sent.
type RAKP1 struct {
	Tag              uint8
	ManagedSessionID uint32
	ConsoleRandom    [16]byte
	Role             uint8
	Username         string
}

// Marshal returns the message. A user name over 16 bytes is written as
// is; the BMC will refuse it (status 0Ch, invalid name length).
func (m *RAKP1) Marshal() []byte {
	b := make([]byte, 0, rakp1MinLen+len(m.Username))
	b = append(b, m.Tag, 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, m.ManagedSessionID)
	b = append(b, m.ConsoleRandom[:]...)
	b = append(b, m.Role, 0, 0, uint8(len(m.Username)))
	return append(b, m.Username...)
}

// Unmarshal decodes the message; a user name over 16 bytes is an error.
func (m *RAKP1) Unmarshal(b []byte) error {
	if len(b) < rakp1MinLen {
		return fmt.Errorf("%w: RAKP Message 1 of %d bytes, want at least 28", ErrTruncated, len(b))
	}
	n := int(b[27])
	if n > MaxUsernameLength {
		return fmt.Errorf("rmcpplus: RAKP Message 1 user name length %d exceeds 16", n)
	}
	if len(b) < rakp1MinLen+n {
		return fmt.Errorf("%w: RAKP Message 1 user name of %d bytes, %d present", ErrTruncated, n, len(b)-rakp1MinLen)
	}
	r := RAKP1{
		Tag:              b[0],
		ManagedSessionID: binary.LittleEndian.Uint32(b[4:]),
		Role:             b[24],
		Username:         string(b[rakp1MinLen : rakp1MinLen+n]),
	}
	copy(r.ConsoleRandom[:], b[8:24])
	*m = r
	return nil
}
