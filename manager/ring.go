package manager

import "strconv"

// consoleRing is a node's console history in the conman manner: one
// fixed-size byte ring per node, addressed by absolute stream offsets (the
// number of bytes written before a byte), shared by every viewer of the
// node. Each viewer keeps only a cursor (ringCursor). Writing never blocks
// and never looks at the cursors: it overwrites the oldest bytes, and a
// cursor the writer has overtaken finds out when it next reads.
//
// It is not safe for concurrent use; the hub locks it.
type consoleRing struct {
	buf  []byte
	head uint64 // offset one past the newest byte: bytes ever written
}

// newConsoleRing returns a ring holding the latest capacity bytes.
func newConsoleRing(capacity int) consoleRing {
	return consoleRing{buf: make([]byte, capacity)}
}

// oldest is the offset of the oldest byte still held.
func (r *consoleRing) oldest() uint64 {
	if c := uint64(len(r.buf)); r.head > c {
		return r.head - c
	}
	return 0
}

// write appends p, overwriting the oldest bytes when full; of a p longer
// than the ring only its tail is kept.
func (r *consoleRing) write(p []byte) {
	c := len(r.buf)
	r.head += uint64(len(p))
	if c == 0 {
		return // a ring without a buffer holds nothing
	}
	if len(p) > c {
		p = p[len(p)-c:]
	}
	// p now ends at r.head: it starts at ring index (head-len(p)) mod c.
	at := int((r.head - uint64(len(p))) % uint64(c))
	k := copy(r.buf[at:], p)
	copy(r.buf, p[k:])
}

// readAt copies into p the bytes from offset off on, up to the head, and
// returns how many it copied. off must lie in [oldest, head].
func (r *consoleRing) readAt(p []byte, off uint64) int {
	c := uint64(len(r.buf))
	n := int(min(uint64(len(p)), r.head-off))
	if n == 0 {
		return 0
	}
	at := int(off % c)
	k := copy(p[:n], r.buf[at:])
	copy(p[k:n], r.buf)
	return n
}

// replayFrom is where a cursor starts to replay up to n of the newest bytes
// (fewer if fewer are held).
func (r *consoleRing) replayFrom(n int) uint64 {
	held := r.head - r.oldest()
	return r.head - min(uint64(max(n, 0)), held)
}

// maxDroppedMarker bounds the drop marker's length (a 20-digit count).
const maxDroppedMarker = 64

// appendDroppedMarker appends the line a viewer reads where it lost n bytes:
//
//	\r\n[obmd: 12345 bytes dropped: viewer too slow]\r\n
func appendDroppedMarker(dst []byte, n uint64) []byte {
	dst = append(dst, "\r\n[obmd: "...)
	dst = strconv.AppendUint(dst, n, 10)
	return append(dst, " bytes dropped: viewer too slow]\r\n"...)
}

// ringCursor is one viewer's position in a consoleRing: the next offset to
// read and, while one is being read, the drop marker it owes. It costs a few
// words whatever the ring's size.
type ringCursor struct {
	off        uint64 // next stream offset to read
	lost       uint64 // the pending marker's count; 0 when none is pending
	markerDone int    // bytes of the pending marker already read
}

// read fills p from r without blocking: first the rest of a pending drop
// marker; then, if the writer has overtaken the cursor, a new marker
// counting exactly the bytes overwritten since, the cursor moving to the
// oldest byte held; then stream bytes up to the head. It returns the bytes
// filled and how many stream bytes this call skipped. A cursor with nothing
// to read fills nothing.
func (c *ringCursor) read(r *consoleRing, p []byte) (n int, skipped uint64) {
	for n < len(p) {
		if c.lost > 0 {
			var m [maxDroppedMarker]byte
			marker := appendDroppedMarker(m[:0], c.lost)
			k := copy(p[n:], marker[c.markerDone:])
			n += k
			c.markerDone += k
			if c.markerDone < len(marker) {
				return n, skipped // p is full
			}
			c.lost, c.markerDone = 0, 0
			continue
		}
		if old := r.oldest(); c.off < old {
			c.lost = old - c.off
			skipped += c.lost
			c.off = old
			continue
		}
		k := r.readAt(p[n:], c.off)
		c.off += uint64(k)
		n += k
		break
	}
	return n, skipped
}

// pending reports whether the cursor has something to read: a marker, lost
// bytes or stream bytes.
func (c *ringCursor) pending(r *consoleRing) bool {
	return c.lost > 0 || c.off < r.head
}
