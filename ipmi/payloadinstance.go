package ipmi

// Get Payload Instance Info (NetFn App, command 0x4B; IPMI v2.0 section
// 24.5, Table 24-7): which session a payload instance is activated under.
// A console uses it to tell its own SOL activation from another session's
// (an instance taken over without a word, see BMC-QUIRKS.md "SOL stolen
// silently").

// GetPayloadInstanceInfoReq is the request data of Get Payload Instance
// Info.
type GetPayloadInstanceInfoReq struct {
	PayloadType uint8 // byte 1 [5:0]
	Instance    uint8 // byte 2, 1..15
}

// Marshal encodes the 2-byte request data.
func (r *GetPayloadInstanceInfoReq) Marshal() []byte {
	return []byte{r.PayloadType & 0x3F, r.Instance}
}

// Unmarshal decodes the request data (exactly 2 bytes).
func (r *GetPayloadInstanceInfoReq) Unmarshal(data []byte) error {
	if err := checkLen("Get Payload Instance Info request", data, 2, 2); err != nil {
		return err
	}
	*r = GetPayloadInstanceInfoReq{PayloadType: data[0] & 0x3F, Instance: data[1]}
	return nil
}

// GetPayloadInstanceInfoRsp is the response data after the completion
// code.
type GetPayloadInstanceInfoRsp struct {
	// SessionID is bytes 2:5: the (BMC's) ID of the session the instance
	// is activated under; 0 when the instance is not activated.
	SessionID uint32
	// Info is bytes 6:13, payload-type specific. For SOL byte 6 is the
	// serial port the instance is attached to (ipmi_sim answers 1); the
	// rest is reserved.
	Info [8]byte
}

const getPayloadInstanceInfoRspLen = 12

// Active reports whether the instance is activated under some session.
func (r *GetPayloadInstanceInfoRsp) Active() bool { return r.SessionID != 0 }

// Marshal encodes the 12-byte response data.
func (r *GetPayloadInstanceInfoRsp) Marshal() []byte {
	b := appendLE32(make([]byte, 0, getPayloadInstanceInfoRspLen), r.SessionID)
	return append(b, r.Info[:]...)
}

// Unmarshal decodes the response data; extra bytes are ignored.
func (r *GetPayloadInstanceInfoRsp) Unmarshal(data []byte) error {
	if err := checkLen("Get Payload Instance Info response", data, getPayloadInstanceInfoRspLen, NoLimit); err != nil {
		return err
	}
	*r = GetPayloadInstanceInfoRsp{SessionID: le32(data[0:4])}
	copy(r.Info[:], data[4:12])
	return nil
}
