// Package redfish is the subset of a DMTF Redfish client (DSP0266, the
// Redfish Specification, and DSP8010, its schemas) that obmd needs to
// power-control and set the boot device of one server whose BMC has IPMI
// over LAN turned off: the service root, SessionService login, the
// Systems collection, one ComputerSystem, its Reset action, a PATCH of its
// Boot object, and task monitors for actions answered 202 Accepted.
//
// It is written on net/http and encoding/json alone, with the care of
// package rmcpplus:
//   - typed resources decoded by small pure functions (resources.go), each
//     table-tested and fuzzed with realistic payloads;
//   - one owner of the authentication lifecycle (session.go): log in with
//     SessionService (X-Auth-Token), keep the session warm while it is
//     used, log in again once on a 401, delete it when idle and on Close,
//     fall back to HTTP Basic only where the service offers no sessions, and
//     never hammer a BMC that refused the credentials;
//   - bounded I/O: response bodies are capped, redirects are refused (a
//     redirect would carry the session token elsewhere), every request is
//     bounded by its context;
//   - errors that name the resource, the HTTP status and what the BMC said
//     in @Message.ExtendedInfo (errors.go).
//
// What it must not do: know about nodes, tokens or obmd's REST API (package
// manager drives it), decide the power contract (which reset type answers
// which request is the manager's policy), or log a password or session
// token.
package redfish
