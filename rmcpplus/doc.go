// Package rmcpplus implements RMCP, ASF presence ping/pong and IPMI v2.0
// RMCP+ sessions (IPMI v2.0 sections 13.1-13.33): the session headers, Open
// Session and RAKP 1-4, cipher suites, key derivation, integrity and
// confidentiality, the client Session and the BMC-side session acceptor used
// by fakebmc. It knows nothing of HTTP, nodes or consoles; IPMI message
// bodies come from package ipmi.
package rmcpplus
