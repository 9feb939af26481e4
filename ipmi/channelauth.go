package ipmi

// Get Channel Authentication Capabilities, NetFn App (0x06) command 0x38.
// IPMI v2.0 section 22.13, Table 22-15. Sent outside any session (IPMI v1.5
// packet format, session ID 0) as the first message of every connection:
// ipmitool -I lanplus asks with byte 1 = 0x8E (extended data, this channel),
// ipmitool -I lan with 0x0E.

// ChannelCurrent is the channel number meaning "the channel this request
// arrived on" (IPMI v2.0 section 6.3).
const ChannelCurrent uint8 = 0x0E

// Authentication type support bits of GetChannelAuthCapabilitiesRsp.AuthTypes
// (Table 22-15, byte 3 [5:0]). These are bit masks, not the auth type values
// of a session header (where none is 0 and MD5 is 2).
const (
	AuthSupportNone     uint8 = 1 << 0
	AuthSupportMD2      uint8 = 1 << 1
	AuthSupportMD5      uint8 = 1 << 2
	AuthSupportPassword uint8 = 1 << 4 // straight password / key
	AuthSupportOEM      uint8 = 1 << 5
)

// GetChannelAuthCapabilitiesReq is the request data.
type GetChannelAuthCapabilitiesReq struct {
	Channel uint8 // byte 1 [3:0]; ChannelCurrent for "this channel"
	// ExtendedData is byte 1 [7]: "get IPMI v2.0+ extended data". A client
	// that wants to know whether RMCP+ is supported sets it.
	ExtendedData bool
	MaxPrivilege PrivilegeLevel // byte 2 [3:0], requested maximum privilege
}

// Marshal encodes the 2-byte request data.
func (r *GetChannelAuthCapabilitiesReq) Marshal() []byte {
	return []byte{bit(r.ExtendedData, 0x80) | r.Channel&0x0F, uint8(r.MaxPrivilege) & 0x0F}
}

// Unmarshal decodes the request data (exactly 2 bytes).
func (r *GetChannelAuthCapabilitiesReq) Unmarshal(data []byte) error {
	if err := checkLen("Get Channel Authentication Capabilities request", data, 2, 2); err != nil {
		return err
	}
	*r = GetChannelAuthCapabilitiesReq{
		Channel:      data[0] & 0x0F,
		ExtendedData: isSet(data[0], 0x80),
		MaxPrivilege: PrivilegeLevel(data[1] & 0x0F),
	}
	return nil
}

// GetChannelAuthCapabilitiesRsp is the response data after the completion
// code.
type GetChannelAuthCapabilitiesRsp struct {
	Channel uint8 // byte 2, the channel the request arrived on
	// AuthTypes is byte 3 [5:0], the IPMI v1.5 auth types enabled (AuthSupport*).
	AuthTypes uint8
	// ExtendedCapabilities is byte 3 [7]: bytes 5 (SupportsV20/V15) carry
	// IPMI v2.0 data. Clear means "IPMI v1.5 support only".
	ExtendedCapabilities bool
	// Byte 4.
	KgStatus               bool // [5]: Kg is set to a non-zero value
	PerMessageAuthDisabled bool // [4]
	UserLevelAuthDisabled  bool // [3]
	NonNullUsers           bool // [2]: non-null user names enabled
	NullUsers              bool // [1]: null user names enabled
	AnonymousLogin         bool // [0]: anonymous login enabled
	// Byte 5, valid when ExtendedCapabilities is set.
	SupportsV20 bool   // [1]: channel supports IPMI v2.0 (RMCP+) connections
	SupportsV15 bool   // [0]: channel supports IPMI v1.5 connections
	OEMID       uint32 // bytes 6:8, IANA number of an OEM auth type, else 0
	OEMAux      uint8  // byte 9
}

const getChannelAuthCapabilitiesRspLen = 8 // bytes 2:9

// Marshal encodes the 8-byte response data.
func (r *GetChannelAuthCapabilitiesRsp) Marshal() []byte {
	b := make([]byte, 0, getChannelAuthCapabilitiesRspLen)
	b = append(b,
		r.Channel,
		bit(r.ExtendedCapabilities, 0x80)|r.AuthTypes&0x3F,
		bit(r.KgStatus, 0x20)|bit(r.PerMessageAuthDisabled, 0x10)|bit(r.UserLevelAuthDisabled, 0x08)|
			bit(r.NonNullUsers, 0x04)|bit(r.NullUsers, 0x02)|bit(r.AnonymousLogin, 0x01),
		bit(r.SupportsV20, 0x02)|bit(r.SupportsV15, 0x01),
	)
	b = appendLE24(b, r.OEMID&0xFFFFFF)
	return append(b, r.OEMAux)
}

// Unmarshal decodes the response data; bytes after byte 9 are ignored.
func (r *GetChannelAuthCapabilitiesRsp) Unmarshal(data []byte) error {
	if err := checkLen("Get Channel Authentication Capabilities response", data, getChannelAuthCapabilitiesRspLen, NoLimit); err != nil {
		return err
	}
	*r = GetChannelAuthCapabilitiesRsp{
		Channel:                data[0],
		AuthTypes:              data[1] & 0x3F,
		ExtendedCapabilities:   isSet(data[1], 0x80),
		KgStatus:               isSet(data[2], 0x20),
		PerMessageAuthDisabled: isSet(data[2], 0x10),
		UserLevelAuthDisabled:  isSet(data[2], 0x08),
		NonNullUsers:           isSet(data[2], 0x04),
		NullUsers:              isSet(data[2], 0x02),
		AnonymousLogin:         isSet(data[2], 0x01),
		SupportsV20:            isSet(data[3], 0x02),
		SupportsV15:            isSet(data[3], 0x01),
		OEMID:                  le24(data[4:7]),
		OEMAux:                 data[7],
	}
	return nil
}
