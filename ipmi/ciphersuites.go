package ipmi

import "fmt"

// Get Channel Cipher Suites, NetFn App (0x06) command 0x54. IPMI v2.0
// section 22.15, Tables 22-18 (request/response) and 22-19 (record format).
//
// The full record list is longer than one response, so a client fetches it
// in pages: ListIndex 0, 1, 2, ... each returning up to 16 bytes of record
// data, until a page holds fewer than 16 bytes. Records may straddle pages
// (ipmi_sim's list does), so concatenate every page's Records before calling
// ParseCipherSuiteRecords. A BMC serves page i with CipherSuiteRecordPage.
//
// ipmitool without -C sends this command before any session exists, in
// RMCP+ packet format; a BMC that ignores it costs ipmitool about 10 s.

// CipherSuitePageSize is the most record data bytes in one response.
const CipherSuitePageSize = 16

// GetChannelCipherSuitesReq is the request data.
type GetChannelCipherSuitesReq struct {
	Channel     uint8 // byte 1 [3:0]; ChannelCurrent for "this channel"
	PayloadType uint8 // byte 2 [5:0]; 0 = IPMI
	// ListByAlgorithm is byte 3 [7], the spec's "list algorithms by Cipher
	// Suite": set, the BMC answers with per-suite records (Table 22-19),
	// which is what ParseCipherSuiteRecords reads and what ipmitool and
	// FreeIPMI ask for. Clear asks for a flat list of supported algorithms
	// without suite IDs.
	ListByAlgorithm bool
	ListIndex       uint8 // byte 3 [5:0], the 16-byte page number
}

// Marshal encodes the 3-byte request data.
func (r *GetChannelCipherSuitesReq) Marshal() []byte {
	return []byte{r.Channel & 0x0F, r.PayloadType & 0x3F, bit(r.ListByAlgorithm, 0x80) | r.ListIndex&0x3F}
}

// Unmarshal decodes the request data (exactly 3 bytes).
func (r *GetChannelCipherSuitesReq) Unmarshal(data []byte) error {
	if err := checkLen("Get Channel Cipher Suites request", data, 3, 3); err != nil {
		return err
	}
	*r = GetChannelCipherSuitesReq{
		Channel:         data[0] & 0x0F,
		PayloadType:     data[1] & 0x3F,
		ListByAlgorithm: isSet(data[2], 0x80),
		ListIndex:       data[2] & 0x3F,
	}
	return nil
}

// GetChannelCipherSuitesRsp is the response data after the completion code.
type GetChannelCipherSuitesRsp struct {
	Channel uint8  // byte 2, the channel number (never 0x0E)
	Records []byte // bytes 3:18, one page of record data, 0-16 bytes
}

// Marshal encodes the response data. Records is written as given; a BMC
// keeps it to CipherSuitePageSize bytes.
func (r *GetChannelCipherSuitesRsp) Marshal() []byte {
	return append([]byte{r.Channel}, r.Records...)
}

// Unmarshal decodes the response data. Records holds everything after the
// channel byte, even if a BMC sends more than 16 bytes.
func (r *GetChannelCipherSuitesRsp) Unmarshal(data []byte) error {
	if err := checkLen("Get Channel Cipher Suites response", data, 1, NoLimit); err != nil {
		return err
	}
	*r = GetChannelCipherSuitesRsp{Channel: data[0], Records: cloneData(data[1:])}
	return nil
}

// CipherSuiteRecordPage returns page index (ListIndex) of the concatenated
// record data all, as a BMC answers it: up to CipherSuitePageSize bytes,
// empty past the end.
func CipherSuiteRecordPage(all []byte, index uint8) []byte {
	start := int(index) * CipherSuitePageSize
	if start >= len(all) {
		return nil
	}
	return all[start:min(start+CipherSuitePageSize, len(all))]
}

// CipherSuiteRecord is one standard cipher suite record: a suite ID and its
// authentication, integrity and confidentiality algorithm numbers (IPMI v2.0
// section 13.28, Table 13-17 to 13-19; Table 22-20 lists the standard
// suites, e.g. 3 = HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128 and 17 =
// HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128).
type CipherSuiteRecord struct {
	ID              uint8
	Auth            uint8 // 6 bits
	Integrity       uint8 // 6 bits
	Confidentiality uint8 // 6 bits
}

// Record format bytes, Table 22-19.
const (
	cipherRecordStandard = 0xC0 // start of record, standard suite
	cipherRecordOEM      = 0xC1 // start of record, OEM suite: ID then 3-byte IANA
	cipherTagMask        = 0xC0 // [7:6] tag of an algorithm byte
	cipherTagAuth        = 0x00
	cipherTagIntegrity   = 0x40
	cipherTagConf        = 0x80
	cipherAlgMask        = 0x3F
)

// ParseCipherSuiteRecords decodes concatenated record data (Table 22-19):
//
//	standard: 0xC0, suite ID, algorithm bytes
//	OEM:      0xC1, suite ID, 3-byte OEM IANA, algorithm bytes
//
// where each algorithm byte carries a tag in [7:6] (00b authentication,
// 01b integrity, 10b confidentiality) and the algorithm number in [5:0].
// Every record must name one algorithm of each kind; if a record lists
// several of a kind, the first is kept. OEM records are validated and
// skipped: their suite IDs mean something only to that vendor, so a
// standard client must not pick one.
func ParseCipherSuiteRecords(b []byte) ([]CipherSuiteRecord, error) {
	var recs []CipherSuiteRecord
	for i := 0; i < len(b); {
		start := b[i]
		if start != cipherRecordStandard && start != cipherRecordOEM {
			return nil, &FieldError{What: "cipher suite record data",
				Reason: fmt.Sprintf("byte %d is 0x%02X, want start of record 0xC0 or 0xC1", i, start)}
		}
		hdr := 2
		if start == cipherRecordOEM {
			hdr += 3
		}
		if i+hdr > len(b) {
			return nil, &FieldError{What: "cipher suite record data",
				Reason: fmt.Sprintf("record at byte %d is truncated", i)}
		}
		rec := CipherSuiteRecord{ID: b[i+1]}
		var have [3]bool // auth, integrity, confidentiality
		j := i + hdr
		for ; j < len(b) && b[j]&cipherTagMask != cipherTagMask; j++ {
			kind := b[j] >> 6 // the tag: 0 auth, 1 integrity, 2 confidentiality
			if have[kind] {
				continue
			}
			have[kind] = true
			alg := b[j] & cipherAlgMask
			switch kind {
			case 0:
				rec.Auth = alg
			case 1:
				rec.Integrity = alg
			case 2:
				rec.Confidentiality = alg
			}
		}
		for kind, name := range [3]string{"authentication", "integrity", "confidentiality"} {
			if !have[kind] {
				return nil, &FieldError{What: "cipher suite record data",
					Reason: fmt.Sprintf("record for suite %d at byte %d has no %s algorithm", rec.ID, i, name)}
			}
		}
		if start == cipherRecordStandard {
			recs = append(recs, rec)
		}
		i = j
	}
	return recs, nil
}

// AppendCipherSuiteRecords appends the standard record (Table 22-19) of
// each suite to b: 0xC0, ID, auth, 0x40|integrity, 0x80|confidentiality.
func AppendCipherSuiteRecords(b []byte, recs []CipherSuiteRecord) []byte {
	for _, r := range recs {
		b = append(b, cipherRecordStandard, r.ID,
			cipherTagAuth|r.Auth&cipherAlgMask,
			cipherTagIntegrity|r.Integrity&cipherAlgMask,
			cipherTagConf|r.Confidentiality&cipherAlgMask)
	}
	return b
}
