package ipmi

// Helpers that build the Message envelope around a command's data, for the
// common case of remote software (0x81) talking to the BMC (0x20) on LUN 0
// over a LAN channel (IPMI v2.0 section 13.8 and Table 5-4).

// NewRequest returns a request from remote software (SrcAddr 0x81) to the
// BMC (DstAddr 0x20), both LUN 0, with sequence number seq (6 bits; higher
// bits are dropped). data is not copied.
func NewRequest(netfn NetFn, cmd Command, seq uint8, data []byte) *Message {
	return &Message{
		DstAddr: AddrBMC,
		NetFn:   netfn,
		SrcAddr: AddrRemoteSW,
		Seq:     seq & 0x3F,
		Cmd:     cmd,
		Data:    data,
	}
}

// NewResponse answers req: the addresses and LUNs are swapped, the NetFn is
// the request's plus one, the sequence number and command are echoed, and
// Data is the completion code followed by data (IPMI v2.0 section 13.8,
// Figure 13-4). A BMC that fails a command answers with cc and no data.
func NewResponse(req *Message, cc CompletionCode, data []byte) *Message {
	out := make([]byte, 0, 1+len(data))
	out = append(out, uint8(cc))
	out = append(out, data...)
	return &Message{
		DstAddr: req.SrcAddr,
		NetFn:   req.NetFn.Response(),
		DstLUN:  req.SrcLUN,
		SrcAddr: req.DstAddr,
		Seq:     req.Seq,
		SrcLUN:  req.DstLUN,
		Cmd:     req.Cmd,
		Data:    out,
	}
}

// CompletionCode returns the first data byte of a response. A response
// without any data is malformed; it reports CCUnspecified (0xFF) so callers
// treat it as a failure rather than as success.
func (m *Message) CompletionCode() CompletionCode {
	if len(m.Data) == 0 {
		return CCUnspecified
	}
	return CompletionCode(m.Data[0])
}

// ResponseData returns a response's data after the completion code (what
// the typed response codecs decode). It aliases m.Data.
func (m *Message) ResponseData() []byte {
	if len(m.Data) <= 1 {
		return nil
	}
	return m.Data[1:]
}

// Err returns nil for a response whose completion code is 0x00 and a
// *CompletionError naming the command and the code otherwise.
func (m *Message) Err() error {
	if cc := m.CompletionCode(); cc != CCOK {
		return &CompletionError{NetFn: m.NetFn &^ 1, Cmd: m.Cmd, Code: cc}
	}
	return nil
}
