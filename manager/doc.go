// Package manager is obmd's node manager: the registry of nodes and their
// drivers, node tokens, per-node serialisation of BMC operations, and the
// console hub that fans one console out to many viewers.
//
// What it is for:
//   - Drivers are split by capability (PowerDriver, ConsoleDriver, combined in
//     Driver) and found by type name in a Registry of DriverType values, each
//     validating its own "info" JSON (ValidationError, HTTP 400) and showing
//     only a redacted form of it in logs. BuiltinDrivers has "mock" (the
//     original obmd's test driver, which HIL's integration tests use) and
//     "ipmi", whose constructor manager/ipmidriver.go plugs in on top of
//     package bmc; without it, "ipmi" nodes are refused with ErrUnsupported.
//     "redfish" (manager/redfishdriver.go, on package redfish) drives servers
//     whose BMC has IPMI over LAN turned off, with the same contract.
//   - Operations on one node run one at a time, each bounded by the operation
//     timeout; there is no global lock, so a stalled BMC blocks only its own
//     node.
//   - Tokens are 128-bit random values; only their SHA-256 is kept, compared
//     in constant time. A wrong token and an unknown node look the same.
//     Replacing or revoking a token, or deleting the node, disconnects its
//     console viewers at once.
//   - Errors carry a kind (ErrInvalid, ErrUnauthorized, ErrNotFound,
//     ErrExists, ErrUnsupported, ErrBMC, ErrTimeout, ErrInternal,
//     ErrUnavailable) that package api maps to an HTTP status.
//   - With a store other instances share (package cluster's etcd store),
//     their changes arrive through ApplyStored and take effect exactly as
//     local ones do (stored.go).
//
// What it must not do: speak HTTP (package api does), touch packets or
// sockets (drivers do, through package bmc), or log a password, Kg or
// token.
package manager
