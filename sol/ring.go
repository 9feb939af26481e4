package sol

// ring is a FIFO of bytes that grows (by doubling, from 256 bytes) to the
// most it has held and no further: the Engine's send queue and the
// shells' receive buffers, each bounded by its user. It allocates nothing
// until the first write.
type ring struct {
	buf        []byte
	head, size int
}

func (r *ring) len() int { return r.size }

func (r *ring) reset() { r.head, r.size = 0, 0 }

// grow makes room for n more bytes.
func (r *ring) grow(n int) {
	if r.size+n <= len(r.buf) {
		return
	}
	nb := make([]byte, max(2*len(r.buf), r.size+n, 256))
	size := r.size
	r.read(nb[:size])
	r.buf, r.head, r.size = nb, 0, size
}

// write appends p.
func (r *ring) write(p []byte) {
	if len(p) == 0 {
		return
	}
	r.grow(len(p))
	tail := (r.head + r.size) % len(r.buf)
	n := copy(r.buf[tail:], p)
	copy(r.buf, p[n:])
	r.size += len(p)
}

// unread puts p back in front of what the ring holds.
func (r *ring) unread(p []byte) {
	if len(p) == 0 {
		return
	}
	r.grow(len(p))
	r.head = (r.head - len(p) + len(r.buf)) % len(r.buf)
	n := copy(r.buf[r.head:], p)
	copy(r.buf, p[n:])
	r.size += len(p)
}

// read takes up to len(p) bytes from the front.
func (r *ring) read(p []byte) int {
	n := min(len(p), r.size)
	if n == 0 {
		return 0
	}
	k := copy(p[:n], r.buf[r.head:])
	copy(p[k:n], r.buf)
	r.head = (r.head + n) % len(r.buf)
	r.size -= n
	return n
}
