// Package fakebmc simulates IPMI v2.0 BMCs that real clients (ipmitool,
// FreeIPMI) and obmd's own client accept unmodified: a simulated machine
// (power state with realistic timing, boot flags, last power event), the
// command handlers a BMC serves on its LAN channel, a serial console behind
// Serial-over-LAN, fault injection on the datagrams (FaultPlan), BMCs that
// misbehave as real ones do (BehaviourPlan: firmware reboots, a SOL payload
// left active by a vanished client, a full session table, a black hole,
// slow answers), and a Fleet that runs many BMCs on consecutive UDP ports
// from one process, a reproducible share of them misbehaving. With
// BMCConfig.Redfish a BMC also serves DMTF Redfish over HTTPS on TCP at
// its port number, backed by the same machine (redfish*.go), with the
// deviations of real Redfish services as RedfishQuirks.
//
// Its shape follows OpenBMC's phosphor-net-ipmid: one handler per command,
// registered in a table keyed by (NetFn, Cmd) with the privilege it needs;
// the handlers talk to the simulated machine through the Machine interface;
// sessions (Open Session, RAKP, Set Session Privilege, Close Session, Get
// Channel Authentication Capabilities, Get Channel Cipher Suites) are
// served by rmcpplus.Server, the same session code obmd's client uses, and
// SOL sequencing by package sol's BMC-side endpoint. The wire format lives
// in packages ipmi, rmcpplus and sol only.
//
// fakebmc must not be a second implementation of the protocol: it holds no
// packet codec of its own beyond what a command handler needs, and it never
// imports obmd's client, manager or API layers. It is test and demo
// infrastructure, never a production BMC: it keeps passwords in memory in
// clear and accepts whatever the simulated machine allows.
package fakebmc
