package rmcpplus

import "fmt"

// RAKPStatus is the status code of an Open Session Response and of RAKP
// messages 2-4. IPMI v2.0 section 13.24, Table 13-15 ("RMCP+ and RAKP
// Message Status Codes").
type RAKPStatus uint8

// RAKP status codes, Table 13-15.
const (
	RAKPNoErrors                       RAKPStatus = 0x00
	RAKPInsufficientResources          RAKPStatus = 0x01
	RAKPInvalidSessionID               RAKPStatus = 0x02
	RAKPInvalidPayloadType             RAKPStatus = 0x03
	RAKPInvalidAuthAlgorithm           RAKPStatus = 0x04
	RAKPInvalidIntegrityAlgorithm      RAKPStatus = 0x05
	RAKPNoMatchingAuthPayload          RAKPStatus = 0x06
	RAKPNoMatchingIntegrityPayload     RAKPStatus = 0x07
	RAKPInactiveSessionID              RAKPStatus = 0x08
	RAKPInvalidRole                    RAKPStatus = 0x09
	RAKPUnauthorizedRole               RAKPStatus = 0x0A
	RAKPInsufficientResourcesForRole   RAKPStatus = 0x0B
	RAKPInvalidNameLength              RAKPStatus = 0x0C
	RAKPUnauthorizedName               RAKPStatus = 0x0D
	RAKPUnauthorizedGUID               RAKPStatus = 0x0E
	RAKPInvalidIntegrityCheckValue     RAKPStatus = 0x0F
	RAKPInvalidConfidentialityAlgo     RAKPStatus = 0x10
	RAKPNoCipherSuiteMatch             RAKPStatus = 0x11
	RAKPIllegalOrUnrecognizedParameter RAKPStatus = 0x12
)

var rakpStatusText = [...]string{
	RAKPNoErrors:                       "no errors",
	RAKPInsufficientResources:          "insufficient resources to create a session",
	RAKPInvalidSessionID:               "invalid session ID",
	RAKPInvalidPayloadType:             "invalid payload type",
	RAKPInvalidAuthAlgorithm:           "invalid authentication algorithm",
	RAKPInvalidIntegrityAlgorithm:      "invalid integrity algorithm",
	RAKPNoMatchingAuthPayload:          "no matching authentication payload",
	RAKPNoMatchingIntegrityPayload:     "no matching integrity payload",
	RAKPInactiveSessionID:              "inactive session ID",
	RAKPInvalidRole:                    "invalid role",
	RAKPUnauthorizedRole:               "unauthorized role or privilege level requested",
	RAKPInsufficientResourcesForRole:   "insufficient resources to create a session at the requested role",
	RAKPInvalidNameLength:              "invalid name length",
	RAKPUnauthorizedName:               "unauthorized name",
	RAKPUnauthorizedGUID:               "unauthorized GUID",
	RAKPInvalidIntegrityCheckValue:     "invalid integrity check value",
	RAKPInvalidConfidentialityAlgo:     "invalid confidentiality algorithm",
	RAKPNoCipherSuiteMatch:             "no cipher suite match with proposed security algorithms",
	RAKPIllegalOrUnrecognizedParameter: "illegal or unrecognized parameter",
}

// String returns the code and its meaning, e.g. "0x0D unauthorized name".
func (s RAKPStatus) String() string {
	if int(s) < len(rakpStatusText) {
		return fmt.Sprintf("0x%02X %s", uint8(s), rakpStatusText[s])
	}
	return fmt.Sprintf("0x%02X reserved status code", uint8(s))
}
