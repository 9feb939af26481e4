package ipmi

// Get Device ID, NetFn App (0x06) command 0x01. IPMI v2.0 section 20.1,
// Table 20-2. ipmitool sends it as a probe in every session ("mc info",
// and its SOL keepalive), so a BMC must answer it.

// GetDeviceIDReq has no request data.
type GetDeviceIDReq struct{}

// Marshal returns the empty request data.
func (r *GetDeviceIDReq) Marshal() []byte { return nil }

// Unmarshal accepts only empty data.
func (r *GetDeviceIDReq) Unmarshal(data []byte) error {
	return checkLen("Get Device ID request", data, 0, 0)
}

// GetDeviceIDRsp is the response data after the completion code.
type GetDeviceIDRsp struct {
	DeviceID       uint8 // byte 2
	DeviceRevision uint8 // byte 3 [3:0]
	ProvidesSDRs   bool  // byte 3 [7]: the device provides Device SDRs
	// DeviceAvailable is true in normal operation. On the wire it is the
	// inverse of byte 4 [7], which is set while a firmware or SDR update or
	// self-initialisation is in progress (ipmitool prints "Device Available:
	// no" then).
	DeviceAvailable bool
	FirmwareMajor   uint8 // byte 4 [6:0], binary
	FirmwareMinor   uint8 // byte 5, BCD: 0x08 prints as "x.08"
	// IPMIVersion is BCD with the digits swapped: 0x02 is 2.0, 0x51 is 1.5.
	IPMIVersion       uint8
	AdditionalSupport uint8  // byte 7, bit mask (sensor, SDR repo, SEL, FRU, ..., chassis)
	ManufacturerID    uint32 // bytes 8:10, IANA enterprise number, 20 bits
	ProductID         uint16 // bytes 11:12
	AuxFirmware       []byte // bytes 13:16, optional: nil or 4 bytes
}

// IPMI version values of GetDeviceIDRsp.IPMIVersion.
const (
	IPMIVersion15 uint8 = 0x51
	IPMIVersion20 uint8 = 0x02
)

// Additional Device Support bits (Table 20-2, byte 7).
const (
	DeviceSupportSensor         uint8 = 1 << 0
	DeviceSupportSDRRepository  uint8 = 1 << 1
	DeviceSupportSEL            uint8 = 1 << 2
	DeviceSupportFRU            uint8 = 1 << 3
	DeviceSupportEventReceiver  uint8 = 1 << 4
	DeviceSupportEventGenerator uint8 = 1 << 5
	DeviceSupportBridge         uint8 = 1 << 6
	DeviceSupportChassis        uint8 = 1 << 7
)

const getDeviceIDRspMin = 11 // bytes 2:12; Aux Firmware Revision (13:16) is optional

// Marshal encodes the response data (without the completion code).
func (r *GetDeviceIDRsp) Marshal() []byte {
	b := make([]byte, 0, getDeviceIDRspMin+4)
	b = append(b,
		r.DeviceID,
		bit(r.ProvidesSDRs, 0x80)|r.DeviceRevision&0x0F,
		bit(!r.DeviceAvailable, 0x80)|r.FirmwareMajor&0x7F,
		r.FirmwareMinor,
		r.IPMIVersion,
		r.AdditionalSupport,
	)
	b = appendLE24(b, r.ManufacturerID&0x0FFFFF)
	b = appendLE16(b, r.ProductID)
	if r.AuxFirmware != nil {
		var aux [4]byte
		copy(aux[:], r.AuxFirmware)
		b = append(b, aux[:]...)
	}
	return b
}

// Unmarshal decodes the response data. Trailing bytes beyond the optional
// Aux Firmware Revision are ignored; a partial Aux Firmware Revision (1-3
// bytes) is ignored too.
func (r *GetDeviceIDRsp) Unmarshal(data []byte) error {
	if err := checkLen("Get Device ID response", data, getDeviceIDRspMin, NoLimit); err != nil {
		return err
	}
	*r = GetDeviceIDRsp{
		DeviceID:          data[0],
		DeviceRevision:    data[1] & 0x0F,
		ProvidesSDRs:      isSet(data[1], 0x80),
		DeviceAvailable:   !isSet(data[2], 0x80),
		FirmwareMajor:     data[2] & 0x7F,
		FirmwareMinor:     data[3],
		IPMIVersion:       data[4],
		AdditionalSupport: data[5],
		ManufacturerID:    le24(data[6:9]) & 0x0FFFFF,
		ProductID:         le16(data[9:11]),
	}
	if len(data) >= getDeviceIDRspMin+4 {
		r.AuxFirmware = cloneData(data[11:15])
	}
	return nil
}
