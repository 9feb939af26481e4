package bench

import "bytes"

// The counter console (fakebmc's default, "0\n1\n2\n...") makes a console
// stream self-checking: every line must be the previous one plus one. A
// viewer may join mid-line, so checking starts after the first newline.
// obmd's console hub writes "\r\n[obmd: ...]\r\n" marker lines where it
// dropped bytes for a slow viewer or reconnected the BMC; those count as
// gaps too. A carriage return is ignored wherever it appears.

// CounterCheck verifies a counter console stream fed to it in arbitrary
// chunks. The zero value is ready to use. It is not safe for concurrent
// use: one per viewer.
type CounterCheck struct {
	// OnLine, if set, is called with the value of every line counted in
	// Lines: the first complete line and each one above its predecessor.
	OnLine func(v uint64)

	synced  bool   // a newline has been seen: line starts are known
	partial []byte // bytes of the current line so far
	started bool   // First is set
	prev    uint64 // last good value

	// First is the first complete line's value; valid once Lines > 0.
	First uint64
	// Bytes counts every byte fed; Lines the counter lines above their
	// predecessor (the first one included).
	Bytes, Lines uint64
	// Missing counts counter values skipped (a gap of 3 missing lines adds
	// 3); Backward the lines at or below their predecessor (duplicated or
	// reordered); Garbage the lines that are not decimal numbers, markers
	// included.
	Missing, Backward, Garbage uint64
}

// maxCounterLine bounds a line: a uint64 has at most 20 digits. Longer
// "lines" are garbage, and the bound keeps memory constant.
const maxCounterLine = 24

// Write feeds console bytes; it never fails.
func (c *CounterCheck) Write(p []byte) (int, error) {
	c.Bytes += uint64(len(p))
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			c.appendPartial(rest)
			break
		}
		c.appendPartial(rest[:i])
		rest = rest[i+1:]
		if c.synced {
			c.endLine()
		}
		c.synced = true
		c.partial = c.partial[:0]
	}
	return len(p), nil
}

func (c *CounterCheck) appendPartial(b []byte) {
	for _, ch := range b {
		if ch == '\r' {
			continue
		}
		if len(c.partial) <= maxCounterLine {
			c.partial = append(c.partial, ch)
		}
	}
}

// endLine judges the complete line in c.partial. Empty lines (the \r\n
// around a marker) are ignored.
func (c *CounterCheck) endLine() {
	if len(c.partial) == 0 {
		return
	}
	v, ok := parseDecimal(c.partial)
	if !ok {
		c.Garbage++
		return
	}
	switch {
	case !c.started:
		c.started, c.First = true, v
	case v <= c.prev:
		c.Backward++
		return
	case v > c.prev+1:
		c.Missing += v - c.prev - 1
	}
	c.prev = v
	c.Lines++
	if c.OnLine != nil {
		c.OnLine(v)
	}
}

// Gaps is every defect seen: missing, backward and garbage lines.
func (c *CounterCheck) Gaps() uint64 { return c.Missing + c.Backward + c.Garbage }

// Last is the last in-sequence value; valid once Lines > 0.
func (c *CounterCheck) Last() uint64 { return c.prev }

// parseDecimal parses 1 to 20 ASCII digits without overflow.
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		d := uint64(ch - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// CounterOffset is the byte offset of line v in the counter stream: the
// length of "0\n1\n...(v-1)\n". Pure and constant time (one step per digit
// count).
func CounterOffset(v uint64) uint64 {
	var off uint64
	start, width := uint64(0), uint64(2) // values start.. have width-1 digits
	for limit := uint64(10); ; limit *= 10 {
		if v <= limit || limit > ^uint64(0)/10 {
			return off + (v-start)*width
		}
		off += (limit - start) * width
		start, width = limit, width+1
	}
}
