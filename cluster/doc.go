// Package cluster runs several obmd instances as one service on etcd, so
// that losing an instance loses no node: any instance answers any request
// for any node, and exactly one instance at a time, the node's owner,
// holds its BMC sessions and console (a BMC allows one SOL session).
//
// What lives where in etcd, under the prefix (ETCD_PREFIX, default /obmd/):
//
//	nodes/ID     the node's record (package store's encoding: type, info,
//	             token hash). Written by transactions: register-if-absent,
//	             token replacement compared on the record's revision.
//	members/M    one key per live instance, M its advertised URL (escaped),
//	             attached to the instance's lease.
//	owners/ID    the node's lock: the owning instance and its lease,
//	             attached to that lease, taken only if absent.
//
// How the parts fit (one file each):
//   - store.go: manager.NodeStore over etcd; a write returns once etcd has
//     committed it, and its revision.
//   - watch.go: one watch over the whole prefix delivers every change in
//     revision order: nodes to the manager (manager.ApplyStored, which
//     ends viewers of a replaced token on every instance), members and
//     owners to the ownership reconciler.
//   - membership.go: this instance's lease (TTL LeaseTTL), kept alive, and
//     its members/ key. When the lease is found expired, ownership is
//     dropped and the instance joins again with a new one.
//   - rendezvous.go: which live member should own a node (highest random
//     weight), so that a member's arrival or departure moves only its
//     share of the nodes.
//   - owners.go: per node, take the lock when this instance should own it
//     and nobody holds it, hand it over (console closed, SOL deactivated,
//     then the lock released) when another member should, and point the
//     node's driver at whoever holds it.
//   - driver.go: the driver the manager sees for every node. It is the
//     real driver (ipmi, mock) while this instance owns the node, and a
//     forwarder to the owner otherwise; switching closes the console
//     stream, so the console hub reopens it on the other side and marks
//     the gap for its viewers.
//   - peers.go, peerapi.go: instance-to-instance calls over HTTP(S) at the
//     owner's advertised URL, authenticated with the cluster token: power
//     and boot calls, and the console as a stream that feeds the
//     forwarding instance's own hub (so fan-out spans instances with one
//     SOL session per BMC).
//   - fence.go: a survivor that sees a member's key deleted tells that
//     member its lease is gone, in case it still runs cut off from etcd.
//
// When etcd cannot be reached, nothing moves: every instance keeps
// serving the nodes it owns and forwarding the others' calls as before,
// admin writes fail with 503 (manager.ErrUnavailable), and all resumes
// when etcd answers again. An instance cut off from etcd alone cannot
// tell that case from etcd being down; once its lease has expired the
// other instances take its nodes over and tell it (fence.go), and it
// stops driving those BMCs. Only an instance that reaches neither etcd
// nor any other instance drives them on until it reaches etcd again,
// sees its lease gone and lets them go.
//
// What it must not do: log or return the cluster token, a node token or a
// BMC password; forward a forwarded call (an instance that does not own
// the node answers "not the owner" and the caller looks again); or take a
// node's lock with anything but a transaction on its absence.
package cluster
