package cluster

import (
	"crypto/sha256"
	"encoding/binary"
)

// OwnerOf picks the member that should own node id: the one with the
// highest weight hash(member, id) (rendezvous, or highest-random-weight,
// hashing). Every instance computes the same answer from the same member
// list, and when a member joins or leaves only the nodes it wins or held
// move. SHA-256 because the weights must be the same in every process
// (hash/maphash is seeded per process) and well spread for similar names.
// It returns "" when there is no member.
func OwnerOf(id string, members []string) string {
	best, bestW := "", uint64(0)
	for _, m := range members {
		w := weight(m, id)
		if best == "" || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}

func weight(member, id string) uint64 {
	h := sha256.New()
	h.Write([]byte(member))
	h.Write([]byte{0}) // a separator neither name holds (no control characters in either)
	h.Write([]byte(id))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}
