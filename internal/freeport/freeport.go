// Package freeport picks loopback ports for the servers tests and
// benchmarks start as separate processes (obmd, etcd, fakebmc), which must
// be told a port rather than bind port 0.
//
// Ports are drawn at random below the kernel's ephemeral range. Inside it,
// a port found free can be taken at once by any socket bound to port 0
// (an outgoing connection of another test binary, say) before the server
// binds it; below it, only a socket that names the port can take it.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// low is the bottom of the range ports are drawn from.
const low = 10000

// EphemeralLow is the start of the kernel's ephemeral port range (Linux:
// net.ipv4.ip_local_port_range), at least 20000.
func EphemeralLow() int {
	first := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				first = n
			}
		}
	}
	return max(first, 20000)
}

// TCP returns n distinct TCP ports on 127.0.0.1 that are free now.
func TCP(n int) ([]int, error) {
	hi := EphemeralLow()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free TCP port below the ephemeral range")
		}
		port := low + rand.IntN(hi-low)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		ports = append(ports, port)
	}
	return ports, nil
}

// Run returns the first of n consecutive ports on 127.0.0.1 that are free
// now for UDP and TCP alike (a fakebmc fleet: IPMI on UDP, Redfish on TCP).
func Run(n int) (int, error) {
	hi := EphemeralLow()
	for range 200 {
		base := low + rand.IntN(hi-low-n)
		if runFree(base, n) {
			return base, nil
		}
	}
	return 0, errors.New("no run of free ports below the ephemeral range")
}

func runFree(base, n int) bool {
	for i := range n {
		addr := "127.0.0.1:" + strconv.Itoa(base+i)
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		u.Close()
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
