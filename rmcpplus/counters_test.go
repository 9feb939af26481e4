package rmcpplus

import (
	"context"
	"testing"
)

// Not parallel: it reads process-wide totals, and parallel tests (which
// open sessions) start only after the sequential ones have finished.
func TestCountersFollowSessions(t *testing.T) {
	before := Counters()
	addr := startServer(t, NewServer(testServerConfig(&testHandler{})), nil)
	s := dial(t, clientConfig(addr))
	if got := Counters().SessionsOpen; got != before.SessionsOpen+1 {
		t.Fatalf("sessions open after Dial = %d, want %d", got, before.SessionsOpen+1)
	}
	if _, err := s.Do(context.Background(), netFnTest, cmdCounter, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	if got := Counters().SessionsOpen; got != before.SessionsOpen {
		t.Fatalf("sessions open after Close = %d, want %d", got, before.SessionsOpen)
	}

	// A session that ends while Dial is counting it is not left counted.
	ended := &Session{done: make(chan struct{})}
	close(ended.done)
	ended.countOpen()
	ended.uncount()
	if got := Counters().SessionsOpen; got != before.SessionsOpen {
		t.Fatalf("a session ended during Dial left %d open, want %d", got, before.SessionsOpen)
	}
}
