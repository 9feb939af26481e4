package manager

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The console's marker lines tell viewers the truth about gaps: how long
// the console was really dark, where one console session ends and the
// next begins, and what the driver had to do to open it (issue 10, item
// 4).

// markedStream is a driver stream that also reports the BMC's last word
// (consoleLiveness) and notes on its opening (consoleNotes).
type markedStream struct {
	*fakeStream
	mu        sync.Mutex
	lastHeard time.Time
	notes     []string
}

func (s *markedStream) LastHeard() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHeard
}

func (s *markedStream) heard(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastHeard = t
}

func (s *markedStream) Notes() []string { return s.notes }

// markedDriver opens markedStreams, each with notes.
type markedDriver struct {
	notes  []string
	opened chan *markedStream
}

func (d *markedDriver) open(context.Context) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	s := &markedStream{fakeStream: &fakeStream{PipeReader: pr, w: pw, closed: make(chan struct{})}, notes: d.notes}
	d.opened <- s
	return s, nil
}

func newMarkedHub(cfg HubConfig, notes ...string) (*hub, *markedDriver) {
	d := &markedDriver{notes: notes, opened: make(chan *markedStream, 8)}
	return newHub(cfg, d.open, slog.New(slog.DiscardHandler), &consoleStats{}), d
}

// TestHubReconnectGapCountsFromTheLastSign: a console that went dark 3 s
// before its end was noticed, reopened 100 ms later, reports a 3.1 s gap
// (it reported the 100 ms before: "reconnected after 513ms" for a 3.1 s
// outage). A stream that heard from the BMC after its last byte counts
// from then.
func TestHubReconnectGapCountsFromTheLastSign(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		heardLate time.Duration // the BMC's last word after the last byte; 0: none
		marker    string
	}{
		{"from the last byte", 0, "\r\n[obmd: console reconnected after 3.1s]\r\n"},
		{"from the BMC's last word", 2 * time.Second, "\r\n[obmd: console reconnected after 1.1s]\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, d := newMarkedHub(HubConfig{})
				defer h.close(context.Background(), ErrShuttingDown)
				v := attach(t, h, 0)
				s1 := <-d.opened
				time.Sleep(time.Second)
				s1.w.Write([]byte("53602\n"))
				if tc.heardLate > 0 {
					s1.heard(time.Now().Add(tc.heardLate))
				}
				time.Sleep(3 * time.Second) // dark, and nobody knows yet
				s1.w.Close()                // now the driver notices
				s2 := <-d.opened
				go s2.w.Write([]byte("53654\n"))
				want := "53602\n" + tc.marker + "53654\n"
				if got := string(readExactly(t, v, len(want))); got != want {
					t.Fatalf("viewer read %q, want %q", got, want)
				}
			})
		})
	}
}

// TestHubReplayAcrossSessionsIsMarked: the console closed after its last
// viewer left and reopened for the next; a replay spanning both shows the
// boundary, so the old session's partial last line is not glued to the new
// session's output ("53602" then "53654256" read as "5360253654256"). A
// console's very first session has no marker.
func TestHubReplayAcrossSessionsIsMarked(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h, d := newMarkedHub(HubConfig{Linger: 30 * time.Second})
		defer h.close(context.Background(), ErrShuttingDown)
		a := attach(t, h, 1<<20)
		s1 := <-d.opened
		s1.w.Write([]byte("53601\n53602"))
		if got := string(readExactly(t, a, 11)); got != "53601\n53602" {
			t.Fatalf("first session: %q", got)
		}
		a.Close()
		time.Sleep(40 * time.Second) // the console closes after the linger time
		synctest.Wait()
		select {
		case <-s1.closed:
		default:
			t.Fatal("console still open after the linger time")
		}
		b := attach(t, h, 1<<20)
		s2 := <-d.opened
		s2.w.Write([]byte("53654256\n"))
		want := "53601\n53602\r\n[obmd: console reopened after 40s]\r\n53654256\n"
		if got := string(readExactly(t, b, len(want))); got != want {
			t.Fatalf("replay read %q, want %q", got, want)
		}
	})
}

// TestHubShowsTheDriversNotes: what the driver did to open the console (a
// SOL instance taken over from another session) is a marker line on the
// first open and on every reopen.
func TestHubShowsTheDriversNotes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const note = "SOL was active for another session; took it over"
		h, d := newMarkedHub(HubConfig{}, note)
		defer h.close(context.Background(), ErrShuttingDown)
		v := attach(t, h, 0)
		s1 := <-d.opened
		s1.w.Write([]byte("a\n"))
		s1.w.Close()
		s2 := <-d.opened
		go s2.w.Write([]byte("b\n"))
		want := "\r\n[obmd: " + note + "]\r\n" + "a\n" +
			"\r\n[obmd: console reconnected after 100ms]\r\n" + "\r\n[obmd: " + note + "]\r\n" + "b\n"
		if got := string(readExactly(t, v, len(want))); got != want {
			t.Fatalf("viewer read %q, want %q", got, want)
		}
	})
}
