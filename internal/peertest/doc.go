// Package peertest starts the real IPMI peers obmd must interoperate with
// (OpenIPMI's ipmi_sim as a BMC, ipmitool and FreeIPMI as clients) for
// tests, and reads the packet captures in testdata/captures.
//
// It is test support only: nothing outside _test.go files may import it. It
// depends on the standard library and obmd/internal/syncbuf alone, so that
// the tests of every obmd package (rmcpplus and ipmi included) can import
// it without a cycle; for
// the same reason it hand-encodes the one packet it sends (an ASF presence
// ping) instead of using rmcpplus.
//
// Every helper takes a testing.TB, registers its cleanup with t.Cleanup and
// calls t.Skip only when the peer's binary is not installed (CI installs
// them: apt-get install openipmi ipmitool freeipmi-tools). Passwords never
// appear on a command line: ipmitool gets it through IPMI_PASSWORD and -E,
// FreeIPMI through a --config-file in the test's temporary directory.
package peertest
