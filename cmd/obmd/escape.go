package main

// The console client's escapes, as ssh and ipmitool have them: the escape
// character is special only as the first byte of a line (right after a CR
// or LF, or at the very start), and the byte after it says what to do. Any
// other byte after it sends both, so a ~ typed mid-line or followed by an
// ordinary key goes through. The escaper is a pure state machine over the
// bytes read from the terminal; the client acts on its events.

// escAction is what an escape asks for.
type escAction int

const (
	escNone  escAction = iota // data to send
	escQuit                   // ~.
	escBreak                  // ~B
	escHelp                   // ~?
)

// escEvent is data to send (action escNone) or an escape's action.
type escEvent struct {
	action escAction
	data   []byte
}

// escaper finds escapes in typed input.
type escaper struct {
	esc       byte // 0: escapes disabled
	lineStart bool // the next byte is the first of a line
	pending   bool // an escape character at a line start awaits its command
}

func newEscaper(esc byte) *escaper { return &escaper{esc: esc, lineStart: true} }

// feed takes bytes as read and returns, in order, the data to send and the
// escapes' actions. Nothing after a quit is returned. An escape character
// that ends the input is held until the next byte says what it is.
func (e *escaper) feed(in []byte) []escEvent {
	var out []escEvent
	var data []byte
	flush := func() {
		if len(data) > 0 {
			out = append(out, escEvent{data: data})
			data = nil
		}
	}
	act := func(a escAction) {
		flush()
		out = append(out, escEvent{action: a})
	}
	for _, b := range in {
		if e.pending {
			e.pending = false
			switch b {
			case '.':
				act(escQuit)
				return out
			case 'B':
				act(escBreak)
				continue // still at the start of a line: ~B~. works
			case '?':
				act(escHelp)
				continue
			case e.esc:
				data = append(data, e.esc) // ~~ types one ~
				e.lineStart = false
				continue
			}
			data = append(data, e.esc) // not an escape: the ~ goes too
		}
		if e.esc != 0 && e.lineStart && b == e.esc {
			e.pending = true
			continue
		}
		data = append(data, b)
		e.lineStart = b == '\r' || b == '\n'
	}
	flush()
	return out
}
