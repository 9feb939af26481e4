package ipmi

// Set SOL Configuration Parameters (NetFn Transport 0x0C, command 0x21;
// IPMI v2.0 section 26.2, Table 26-4) and Get SOL Configuration Parameters
// (command 0x22; section 26.3, Table 26-5), with the parameters of
// Table 26-5 ("SOL Configuration Parameters").
//
// `ipmitool sol info [channel]` (channel defaults to 0x0E) sends Get with
// [channel, param, 0, 0] for params 0 to 8 in order and, for completion
// code 0x00, requires exactly this many data bytes after the revision
// (otherwise it prints "Unexpected data length" and shows 0):
//
//	param 0 set in progress        1 byte  [1:0] SetComplete/SetInProgress/CommitWrite
//	param 1 SOL enable             1 byte  [0] enabled
//	param 2 SOL authentication     1 byte  [7] force encryption, [6] force
//	                                       authentication, [3:0] privilege level
//	param 3 accumulate interval    2 bytes interval in 5 ms units, send threshold
//	param 4 SOL retry              2 bytes [2:0] retry count, interval in 10 ms units
//	param 5 non-volatile bit rate  1 byte  [3:0] SOLBitRate*
//	param 6 volatile bit rate      1 byte  [3:0] SOLBitRate*
//	param 7 payload channel        1 byte  channel number
//	param 8 payload port           2 bytes UDP port, LS byte first
//
// Completion code 0x80 ("parameter not supported") is accepted for every
// parameter: ipmitool prints an "Info:" line and goes on, taking the
// channel it asked about for param 7 and the session's port for param 8.
// Any other non-zero code makes `sol info` fail. ipmi_sim supports only
// params 0, 1, 5 and 6 (each answered [11 00] or [11 01]).
//
// `ipmitool sol set <param> <value> [channel]` wraps the Set in param 0:
// Set [ch 00 01], Set [ch param value...], Set [ch 00 02], Set [ch 00 00].

// SOL configuration parameter selectors, Table 26-5.
const (
	SOLParamSetInProgress      uint8 = 0
	SOLParamEnable             uint8 = 1
	SOLParamAuthentication     uint8 = 2
	SOLParamCharAccumulate     uint8 = 3
	SOLParamRetry              uint8 = 4
	SOLParamNonVolatileBitRate uint8 = 5
	SOLParamVolatileBitRate    uint8 = 6
	SOLParamPayloadChannel     uint8 = 7
	SOLParamPayloadPort        uint8 = 8
)

// SOLParamRevision is the parameter revision a BMC reports (Table 26-5:
// 11h, "present revision").
const SOLParamRevision uint8 = 0x11

// Bits of the SOL authentication parameter (param 2).
const (
	SOLForceEncryption     uint8 = 0x80
	SOLForceAuthentication uint8 = 0x40
)

// SOL bit rates of params 5 and 6, [3:0].
const (
	SOLBitRateSerial uint8 = 0x0 // use the IPMI-over-serial setting
	SOLBitRate9600   uint8 = 0x6
	SOLBitRate19200  uint8 = 0x7
	SOLBitRate38400  uint8 = 0x8
	SOLBitRate57600  uint8 = 0x9
	SOLBitRate115200 uint8 = 0xA
)

// SetSOLConfigParamsReq is the request data of Set SOL Configuration
// Parameters.
type SetSOLConfigParamsReq struct {
	Channel uint8  // byte 1 [3:0]; ChannelCurrent for "this channel"
	Param   uint8  // byte 2, SOLParam*
	Data    []byte // bytes 3:N, the parameter data
}

// Marshal encodes the request data.
func (r *SetSOLConfigParamsReq) Marshal() []byte {
	return append([]byte{r.Channel & 0x0F, r.Param}, r.Data...)
}

// Unmarshal decodes the request data (at least channel and parameter).
func (r *SetSOLConfigParamsReq) Unmarshal(data []byte) error {
	if err := checkLen("Set SOL Configuration Parameters request", data, 2, NoLimit); err != nil {
		return err
	}
	*r = SetSOLConfigParamsReq{Channel: data[0] & 0x0F, Param: data[1], Data: cloneData(data[2:])}
	return nil
}

// SetSOLConfigParamsRsp has no data after the completion code.
type SetSOLConfigParamsRsp struct{}

// Marshal returns the empty response data.
func (r *SetSOLConfigParamsRsp) Marshal() []byte { return nil }

// Unmarshal accepts any data (there is none to decode).
func (r *SetSOLConfigParamsRsp) Unmarshal(data []byte) error { return nil }

// GetSOLConfigParamsReq is the request data of Get SOL Configuration
// Parameters.
type GetSOLConfigParamsReq struct {
	RevisionOnly  bool  // byte 1 [7]: return only the parameter revision
	Channel       uint8 // byte 1 [3:0]
	Param         uint8 // byte 2, SOLParam*
	SetSelector   uint8 // byte 3
	BlockSelector uint8 // byte 4
}

// Marshal encodes the 4-byte request data.
func (r *GetSOLConfigParamsReq) Marshal() []byte {
	return []byte{bit(r.RevisionOnly, 0x80) | r.Channel&0x0F, r.Param, r.SetSelector, r.BlockSelector}
}

// Unmarshal decodes the request data (exactly 4 bytes).
func (r *GetSOLConfigParamsReq) Unmarshal(data []byte) error {
	if err := checkLen("Get SOL Configuration Parameters request", data, 4, 4); err != nil {
		return err
	}
	*r = GetSOLConfigParamsReq{
		RevisionOnly:  isSet(data[0], 0x80),
		Channel:       data[0] & 0x0F,
		Param:         data[1],
		SetSelector:   data[2],
		BlockSelector: data[3],
	}
	return nil
}

// GetSOLConfigParamsRsp is the response data after the completion code.
type GetSOLConfigParamsRsp struct {
	Revision uint8  // byte 2, SOLParamRevision
	Data     []byte // bytes 3:N, absent when only the revision was asked for
}

// Marshal encodes the response data.
func (r *GetSOLConfigParamsRsp) Marshal() []byte { return append([]byte{r.Revision}, r.Data...) }

// Unmarshal decodes the response data (at least the revision byte).
func (r *GetSOLConfigParamsRsp) Unmarshal(data []byte) error {
	if err := checkLen("Get SOL Configuration Parameters response", data, 1, NoLimit); err != nil {
		return err
	}
	*r = GetSOLConfigParamsRsp{Revision: data[0], Data: cloneData(data[1:])}
	return nil
}
