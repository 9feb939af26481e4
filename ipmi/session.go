package ipmi

// Session commands carried inside an established session: Set Session
// Privilege Level (IPMI v2.0 section 22.18, Table 22-22) and Close Session
// (section 22.19, Table 22-23), both NetFn App (0x06).

// SetSessionPrivilegeLevelReq is the request data of command 0x3B. ipmitool
// sends it right after RAKP 3/4 with the level from -L (default
// ADMINISTRATOR); Level 0 asks for the present level without changing it.
type SetSessionPrivilegeLevelReq struct {
	Level PrivilegeLevel // byte 1 [3:0]
}

// Marshal encodes the 1-byte request data.
func (r *SetSessionPrivilegeLevelReq) Marshal() []byte { return []byte{uint8(r.Level) & 0x0F} }

// Unmarshal decodes the request data (exactly 1 byte).
func (r *SetSessionPrivilegeLevelReq) Unmarshal(data []byte) error {
	if err := checkLen("Set Session Privilege Level request", data, 1, 1); err != nil {
		return err
	}
	*r = SetSessionPrivilegeLevelReq{Level: PrivilegeLevel(data[0] & 0x0F)}
	return nil
}

// SetSessionPrivilegeLevelRsp is the response data after the completion
// code: the privilege level now in effect.
type SetSessionPrivilegeLevelRsp struct {
	Level PrivilegeLevel // byte 2 [3:0]
}

// Marshal encodes the 1-byte response data.
func (r *SetSessionPrivilegeLevelRsp) Marshal() []byte { return []byte{uint8(r.Level) & 0x0F} }

// Unmarshal decodes the response data; extra bytes are ignored.
func (r *SetSessionPrivilegeLevelRsp) Unmarshal(data []byte) error {
	if err := checkLen("Set Session Privilege Level response", data, 1, NoLimit); err != nil {
		return err
	}
	*r = SetSessionPrivilegeLevelRsp{Level: PrivilegeLevel(data[0] & 0x0F)}
	return nil
}

// CloseSessionReq is the request data of command 0x3C. A client closes its
// own session by sending its BMC-assigned (managed system) session ID.
type CloseSessionReq struct {
	SessionID uint32 // bytes 1:4
	// Handle is byte 5, present only when SessionID is 0 (close a session
	// by its handle, as shown by Get Session Info).
	Handle uint8
}

// Marshal encodes 4 bytes, or 5 when SessionID is 0.
func (r *CloseSessionReq) Marshal() []byte {
	b := appendLE32(make([]byte, 0, 5), r.SessionID)
	if r.SessionID == 0 {
		b = append(b, r.Handle)
	}
	return b
}

// Unmarshal decodes the request data: 4 bytes, or 5 when the session ID is
// 0. A handle byte after a non-zero session ID is ignored.
func (r *CloseSessionReq) Unmarshal(data []byte) error {
	if err := checkLen("Close Session request", data, 4, 5); err != nil {
		return err
	}
	*r = CloseSessionReq{SessionID: le32(data)}
	if r.SessionID == 0 {
		if err := checkLen("Close Session request with session ID 0", data, 5, 5); err != nil {
			return err
		}
		r.Handle = data[4]
	}
	return nil
}

// CloseSessionRsp has no data after the completion code.
type CloseSessionRsp struct{}

// Marshal returns the empty response data.
func (r *CloseSessionRsp) Marshal() []byte { return nil }

// Unmarshal accepts any data (there is none to decode).
func (r *CloseSessionRsp) Unmarshal(data []byte) error { return nil }
