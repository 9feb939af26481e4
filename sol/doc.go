// Package sol implements Serial over LAN, IPMI v2.0 section 15, on both
// ends of the wire:
//
//   - packet.go: the SOL payload codec (section 15.9, Tables 15-2 and 15-3),
//     pure functions.
//   - engine.go: the sequencing rules as a deterministic state machine with
//     no sockets, goroutines or clock (Engine); every rule is a test that
//     feeds packets and checks the packets, bytes and events it returns.
//   - console.go: the client Console, an io.ReadWriteCloser over an RMCP+
//     session: keepalive with a SOL probe, dead-BMC and stolen-SOL
//     detection, Deactivate Payload on Close. A thin shell around the
//     Engine.
//   - activate.go: Activate Payload (section 24.1) as real BMCs answer it:
//     takeover of another session's activation, SOL Enable toggled when
//     Deactivate Payload is ignored, auxiliary data alternatives, the SOL
//     port and payload size rules; adapt.go names what the Console learns
//     (BMC-QUIRKS.md).
//   - bmc.go: the BMC-side endpoint fakebmc attaches to a session after it
//     answers Activate Payload. Also a thin shell around the Engine.
//
// The package must not open sockets or do RMCP+ framing, integrity or
// encryption itself (package rmcpplus carries the payloads), and it knows
// nothing of nodes, HTTP or console fan-out (the node manager's job).
package sol
