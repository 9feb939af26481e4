// Package sol implements Serial over LAN, IPMI v2.0 section 15, on both
// ends of the wire:
//
//   - packet.go: the SOL payload codec (section 15.9, Tables 15-2 and 15-3),
//     pure functions.
//   - engine.go: the sequencing rules as a deterministic state machine with
//     no sockets, goroutines or clock (Engine); every rule is a test that
//     feeds packets and checks the packets, bytes and events it returns.
//   - console.go: the client Console, an io.ReadWriteCloser over an RMCP+
//     session: Activate Payload (section 24.1) with takeover of a stale
//     activation, keepalive, dead-BMC detection, Deactivate Payload on
//     Close. A thin shell around the Engine.
//   - bmc.go: the BMC-side endpoint fakebmc attaches to a session after it
//     answers Activate Payload. Also a thin shell around the Engine.
//
// The package must not open sockets or do RMCP+ framing, integrity or
// encryption itself (package rmcpplus carries the payloads), and it knows
// nothing of nodes, HTTP or console fan-out (the node manager's job).
package sol
