package fakebmc

import "strconv"

// counterStream is the byte stream of the "counter" console: decimal lines
// "0\n1\n2\n...". It is pure: Read produces the next bytes, Skip advances
// over bytes nobody heard (a serial port with no listener) in time
// proportional to the number of digits, not to the bytes skipped, so an
// unattached console costs nothing while it "keeps counting".
type counterStream struct {
	next uint64 // value of the line after the current one
	line []byte // current line, digits and '\n'
	off  int    // bytes of line already produced
}

func newCounterStream() *counterStream {
	return &counterStream{next: 1, line: []byte("0\n")}
}

// Read fills p with the continuation of the stream. It always fills p.
func (c *counterStream) Read(p []byte) int {
	n := 0
	for n < len(p) {
		if c.off == len(c.line) {
			c.nextLine()
		}
		k := copy(p[n:], c.line[c.off:])
		c.off += k
		n += k
	}
	return n
}

// nextLine makes the line after the current one current by adding one to
// its decimal digits in place: no formatting per line.
func (c *counterStream) nextLine() {
	i := len(c.line) - 2 // the last digit, before '\n'
	for i >= 0 && c.line[i] == '9' {
		c.line[i] = '0'
		i--
	}
	if i < 0 {
		c.line = append(c.line, 0)
		copy(c.line[1:], c.line)
		c.line[0] = '1'
	} else {
		c.line[i]++
	}
	c.off = 0
	c.next++
}

// startLine makes v the current line, none of it produced yet.
func (c *counterStream) startLine(v uint64) {
	c.line = strconv.AppendUint(c.line[:0], v, 10)
	c.line = append(c.line, '\n')
	c.off = 0
	c.next = v + 1
}

// AtLineStart reports whether the next byte is the first of a line.
func (c *counterStream) AtLineStart() bool { return c.off == 0 || c.off == len(c.line) }

// NextValue is the value of the line the next full line will carry: the
// current one if nothing of it was produced yet, else the one after.
func (c *counterStream) NextValue() uint64 {
	if c.off == 0 {
		return c.next - 1
	}
	return c.next
}

// SkipToLineStart drops the rest of a partly produced line, so a listener
// that attaches now starts with a whole line.
func (c *counterStream) SkipToLineStart() {
	if c.off != 0 && c.off != len(c.line) {
		c.off = len(c.line)
	}
}

// Skip advances the stream by n bytes without producing them.
func (c *counterStream) Skip(n uint64) {
	// Finish the current line.
	rest := uint64(len(c.line) - c.off)
	if n < rest {
		c.off += int(n)
		return
	}
	n -= rest
	v := c.next
	// Whole lines, one run of equal digit counts at a time: the values
	// v..limit-1 all take digits+1 bytes.
	for {
		digits := uint64(len(strconv.FormatUint(v, 10)))
		limit := pow10(digits) // first value with one more digit; 0 on overflow
		per := digits + 1
		lines := n / per
		if limit != 0 && lines > limit-v {
			lines = limit - v
		}
		v += lines
		n -= lines * per
		if limit == 0 || v < limit {
			break
		}
	}
	c.startLine(v)
	c.off = int(n) // n < bytes of line v here
}

// pow10 returns 10^d, or 0 if it does not fit in a uint64.
func pow10(d uint64) uint64 {
	p := uint64(1)
	for range d {
		if p > ^uint64(0)/10 {
			return 0
		}
		p *= 10
	}
	return p
}
