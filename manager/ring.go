package manager

// byteRing is a fixed-capacity FIFO of bytes that overwrites its oldest
// bytes instead of refusing or blocking a write (conman's model for console
// buffers). It is not safe for concurrent use; its owner locks.
type byteRing struct {
	buf   []byte
	start int // index of the oldest byte
	n     int // bytes held
}

func newByteRing(capacity int) byteRing {
	return byteRing{buf: make([]byte, capacity)}
}

func (r *byteRing) len() int { return r.n }

// write appends p, overwriting the oldest bytes when full, and returns how
// many previously held or new bytes were lost to make room.
func (r *byteRing) write(p []byte) (lost int) {
	c := len(r.buf)
	if c == 0 {
		return len(p)
	}
	if len(p) >= c {
		// Only the last c bytes of p survive; everything held is lost too.
		lost = r.n + len(p) - c
		copy(r.buf, p[len(p)-c:])
		r.start, r.n = 0, c
		return lost
	}
	if over := r.n + len(p) - c; over > 0 {
		r.start = (r.start + over) % c
		r.n -= over
		lost = over
	}
	end := (r.start + r.n) % c
	k := copy(r.buf[end:], p)
	copy(r.buf, p[k:])
	r.n += len(p)
	return lost
}

// read moves up to len(p) of the oldest bytes into p.
func (r *byteRing) read(p []byte) int {
	c := len(r.buf)
	want := min(len(p), r.n)
	k := copy(p[:want], r.buf[r.start:min(c, r.start+want)])
	copy(p[k:want], r.buf)
	r.start = (r.start + want) % max(c, 1)
	r.n -= want
	return want
}

// tail returns a copy of the newest n bytes (all of them if fewer are held).
func (r *byteRing) tail(n int) []byte {
	n = min(n, r.n)
	out := make([]byte, n)
	c := len(r.buf)
	if n == 0 {
		return out
	}
	first := (r.start + r.n - n) % c
	k := copy(out, r.buf[first:min(c, first+n)])
	copy(out[k:], r.buf)
	return out
}
