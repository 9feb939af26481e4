package manager

import (
	"context"
	"errors"
	"fmt"
)

// The hub's input path: what tenants type into a node's console.
//
// Output fans out (one reader, any number of cursors); input funnels in.
// A viewer's message goes to the driver's stream whole: one writer at a
// time holds the hub's input slot from the moment it asks until the driver
// has taken the whole message, so two viewers' messages never interleave
// and a break lands between messages, never inside one. The driver's
// bounded buffer (ConsoleWriter.Write blocks while it is full) is the
// console's input buffer: a writer faster than the BMC waits in Write, the
// next writers wait for the slot, and a network client behind them is
// slowed down by its transport (TCP, WebSocket) instead of being buffered
// without bound. While the stream is reopening (a BMC reboot), writers
// wait for the new stream, each bounded by its own context.
//
// When the viewers are disconnected (token replaced or revoked, node
// deleted, shutdown), the input the driver still holds is dropped: typed-
// ahead input of a tenancy that ended must not reach the machine later.

// ErrInputLost is returned for a message whose stream ended while the
// driver held it (the BMC connection dropped): some of it may not have
// reached the machine. It is never resent, since a resent keystroke could
// reach it twice.
var ErrInputLost = errors.New("console input: the connection to the BMC ended while it was being sent; some of it may not have reached the machine")

// WriteInput types p on the node's console as one message: in order, whole,
// never interleaved with another viewer's message. It returns once the
// driver has taken all of p, which may take as long as the BMC takes to
// accept what is ahead of it; ctx bounds the wait for the input slot and
// for a reopening console. It fails with the viewer's reason once the
// viewer is disconnected, ErrUnsupported for a console that takes no
// input, or ErrInputLost.
func (v *Viewer) WriteInput(ctx context.Context, p []byte) error {
	if len(p) == 0 {
		return v.Err()
	}
	return v.hub.input(ctx, v, func(w ConsoleWriter) error {
		_, err := w.Write(p)
		return err
	})
}

// SendBreak sends a serial break to the node's console, after every
// message written before it; ctx as for WriteInput.
func (v *Viewer) SendBreak(ctx context.Context) error {
	return v.hub.input(ctx, v, func(w ConsoleWriter) error { return w.SendBreak() })
}

// input runs f on the node's current console stream with the input slot
// held, on behalf of viewer v.
func (h *hub) input(ctx context.Context, v *Viewer, f func(ConsoleWriter) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(v.ended, cancel)
	defer stop()

	select {
	case h.inputSlot <- struct{}{}:
	case <-ctx.Done():
		return v.errOr(ctx.Err())
	}
	defer func() { <-h.inputSlot }()
	for {
		w, wait, err := h.inputStream(v)
		if err != nil {
			return err
		}
		if w == nil {
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return v.errOr(ctx.Err())
			}
		}
		err = f(w)
		// The viewer may have been disconnected between taking the stream
		// and f: what f queued then belongs to a tenancy that has ended.
		h.mu.Lock()
		ended := v.Err()
		h.mu.Unlock()
		if ended != nil {
			w.DiscardInput()
			return ended
		}
		if err != nil {
			return fmt.Errorf("%w (%v)", ErrInputLost, err)
		}
		return nil
	}
}

// inputStream returns the stream to write v's input to or, while the
// console is opening or reopening, a channel closed when that changes.
func (h *hub) inputStream(v *Viewer) (ConsoleWriter, <-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := v.Err(); err != nil {
		return nil, nil, err
	}
	if h.closed != nil {
		return nil, nil, h.closed
	}
	s := h.sess
	if s == nil {
		return nil, h.streamCh, nil
	}
	select {
	case <-s.ready:
	default:
		return nil, h.streamCh, nil
	}
	if s.err != nil {
		return nil, nil, s.err
	}
	if h.reconnecting || s.rc == nil {
		return nil, h.streamCh, nil
	}
	w, ok := s.rc.rc.(ConsoleWriter)
	if !ok {
		return nil, nil, UnsupportedError("this node's console takes no input")
	}
	return w, nil, nil
}

// notifyStreamLocked wakes writers waiting for the stream to change;
// callers hold h.mu.
func (h *hub) notifyStreamLocked() {
	close(h.streamCh)
	h.streamCh = make(chan struct{})
}

// discardInputLocked drops the input the current stream holds; callers
// hold h.mu (the driver's DiscardInput does not block on the hub).
func (h *hub) discardInputLocked() {
	s := h.sess
	if s == nil || s.rc == nil {
		return
	}
	if w, ok := s.rc.rc.(ConsoleWriter); ok {
		if n := w.DiscardInput(); n > 0 {
			h.log.Info("dropped typed input of disconnected viewers", "bytes", n)
		}
	}
}

// errOr is the viewer's reason for being disconnected, or err while it is
// still connected.
func (v *Viewer) errOr(err error) error {
	if e := v.Err(); e != nil {
		return e
	}
	return err
}
