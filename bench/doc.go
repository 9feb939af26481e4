// Package bench measures obmd against the alternatives it replaces, on one
// machine and in one run, so every figure is a ratio against a baseline
// measured seconds apart on the same hardware:
//
//   - the RMCP+ engine (engine.go): a warm session's Get Chassis Status
//     latency, and a cold "handshake + one command + close" against an
//     ipmitool process doing the same against the same fakebmc;
//   - the SOL engine (solthroughput.go): one session's throughput from an
//     unthrottled console next to the stop-and-wait limit of the link it
//     runs on, both halves of the round trip timed on the client's
//     socket, and CPU per megabyte;
//   - the daemon (daemon.go, fanout.go), a real obmd process driven through
//     its REST API: power_status against one ipmitool process per request
//     (what the original obmd did), console fan-out (1 node x many
//     viewers, many nodes x 1 viewer) with every line checked for gaps and
//     timed from the moment it left the BMC (soltap.go: a relay in front of
//     the BMC that derives the session keys from the handshake it forwards
//     and decrypts SOL), obmd's CPU and memory from /proc, and memory with
//     many nodes holding idle sessions.
//
// Each scenario is a function taking its sizes and returning its figures.
// The package's tests run every scenario small, so the code cannot rot,
// and Benchmark functions run them under `go test -bench`; cmd/obmdbench
// runs them full size several times and appends the medians to
// bench/RESULTS.md (make bench). TestProfileFanout (skipped unless
// OBMD_BENCH_PROFILE is set) runs obmd inside the test process to profile
// it with pprof and the execution tracer.
//
// What it must not do: be imported by obmd itself, invent a figure (a
// scenario whose piece is missing fails with the reason), or put a password
// on a command line (ipmitool gets it through IPMI_PASSWORD and -E,
// fakebmc through FAKEBMC_PASS). It talks to loopback only.
package bench
