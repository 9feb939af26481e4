package manager

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Console logs, in the manner of conman: with ConsoleLogConfig set, every
// node's console is kept open and everything it prints is written to
// files, one directory per node:
//
//	DIR/<node>/000003-000001.log
//
// named <tenancy>-<segment>.log. A tenancy is the time between two token
// changes (replacement, revocation, deletion: see hub.newTenancy); each
// starts a new file, so an operator can hand a tenant their own history
// and nobody else's. Within a tenancy a file is closed when the next line
// would take it past MaxBytes, and the next segment starts (a line longer
// than a whole file is split, so no file outgrows MaxBytes, even for a
// console that never prints a newline). A node keeps at most Keep files,
// the oldest removed first (the current one never).
// Files are 0600, directories 0700. Each line starts with the RFC 3339 UTC
// time its first byte arrived at obmd:
//
//	2026-12-02T04:19:34.123Z Booting Linux...
//
// The hub hands the log its bytes under its own lock, from the reader
// goroutine that feeds the viewers, so handing them over must never wait
// for the disk: each node has a bounded queue (QueueBytes), filled by the
// hub and drained by one writer goroutine for all nodes. A queue that is
// full (the disk is slow or stalled) drops what does not fit and counts
// it; a write that fails (disk full, permissions) drops its bytes, counts
// the error and logs it once per run of failures. The file then says
// where it lost output:
//
//	2026-12-02T04:19:40.000Z [obmd: 1234 bytes of console output not logged: the log writer fell behind]

// ConsoleLogConfig turns console logs on.
type ConsoleLogConfig struct {
	// Dir holds one directory per node (created 0700 if missing).
	Dir string
	// MaxBytes rotates a file before a line would take it past this size
	// (default DefaultConsoleLogMaxBytes; at least 64).
	MaxBytes int64
	// Keep is how many files a node keeps, the current one included
	// (default DefaultConsoleLogKeep).
	Keep int
	// QueueBytes bounds a node's console output waiting for the writer
	// (default 256 KiB: over 20 s of a 115200-baud console, while the
	// writer normally drains within milliseconds).
	QueueBytes int

	// fs is where the files are; nil means the operating system's. Tests
	// inject failures through it.
	fs logFS
}

// Console log defaults: at most 4 x 4 MiB on disk per node.
const (
	DefaultConsoleLogMaxBytes = 4 << 20
	DefaultConsoleLogKeep     = 4
	defaultConsoleLogQueue    = 256 << 10
	// keepSpareBytes: a queue buffer that grew past this during a burst or
	// a stall is let go after the flush instead of kept for reuse, so that
	// idle nodes hold little memory.
	keepSpareBytes = 64 << 10
	// maxLogMarks bounds the arrival times queued per node: past it, a
	// chunk is stamped with the time of the one before.
	maxLogMarks = 4096
)

func (c ConsoleLogConfig) withDefaults() ConsoleLogConfig {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultConsoleLogMaxBytes
	}
	c.MaxBytes = max(c.MaxBytes, 64) // room for a timestamp and some text
	if c.Keep <= 0 {
		c.Keep = DefaultConsoleLogKeep
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = defaultConsoleLogQueue
	}
	if c.fs == nil {
		c.fs = osFS{}
	}
	return c
}

// logFS is the file system console logs use.
type logFS interface {
	MkdirAll(path string, perm fs.FileMode) error
	OpenFile(name string, flag int, perm fs.FileMode) (logFile, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Remove(name string) error
}

// logFile is an open console log file.
type logFile interface {
	io.WriteCloser
	io.ReaderAt
	Stat() (fs.FileInfo, error)
}

type osFS struct{}

func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (logFile, error) {
	return os.OpenFile(name, flag, perm)
}
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (osFS) Remove(name string) error                   { return os.Remove(name) }

// ConsoleLogStats counts what the console log writer did.
type ConsoleLogStats struct {
	Bytes        int64 // written to files, timestamps included
	WriteErrors  int64 // failed writes, opens and rotations
	DroppedBytes int64 // console output not logged (queue full or write failed)
}

// consoleLogs is every node's console log and the one writer goroutine.
type consoleLogs struct {
	cfg ConsoleLogConfig
	log *slog.Logger

	bytes, writeErrors, dropped atomic.Int64

	mu      sync.Mutex
	ready   []*nodeLog // nodes with queued output, each once
	closing bool
	wake    chan struct{} // capacity 1: there is work, or closing
	done    chan struct{} // closed when the writer has returned
}

func newConsoleLogs(cfg ConsoleLogConfig, log *slog.Logger) (*consoleLogs, error) {
	cfg = cfg.withDefaults()
	if err := cfg.fs.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("console log directory: %w", err)
	}
	l := &consoleLogs{cfg: cfg, log: log.With("component", "console log"), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.writer()
	return l, nil
}

func (l *consoleLogs) stats() ConsoleLogStats {
	return ConsoleLogStats{Bytes: l.bytes.Load(), WriteErrors: l.writeErrors.Load(), DroppedBytes: l.dropped.Load()}
}

// node returns the console log of node id.
func (l *consoleLogs) node(id string) *nodeLog {
	return &nodeLog{logs: l, id: id, dir: filepath.Join(l.cfg.Dir, nodeDirName(id)), atLineStart: true}
}

// nodeDirName turns a node ID (any UTF-8 but '/' and control characters)
// into one safe path element: path-escaped, with a leading dot escaped
// too so that "." and ".." name directories of their own.
func nodeDirName(id string) string {
	name := url.PathEscape(id)
	if strings.HasPrefix(name, ".") {
		name = "%2E" + name[1:]
	}
	return name
}

func (l *consoleLogs) enqueue(n *nodeLog) {
	l.mu.Lock()
	l.ready = append(l.ready, n)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// writer writes queued output until close.
func (l *consoleLogs) writer() {
	defer close(l.done)
	for range l.wake {
		l.mu.Lock()
		ready, closing := l.ready, l.closing
		l.ready = nil
		l.mu.Unlock()
		for _, n := range ready {
			n.flush()
		}
		if closing {
			return
		}
	}
}

// close writes what is queued and stops the writer. Nodes close their
// files themselves (nodeLog.close) when they shut down.
func (l *consoleLogs) close() {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		<-l.done
		return
	}
	l.closing = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
}

// nodeLog is one node's console log: the queue the hub fills (mu) and the
// file the writer appends to (fileMu).
type nodeLog struct {
	logs *consoleLogs
	id   string
	dir  string

	// Queue side, taken under the hub's lock: never held across I/O.
	mu      sync.Mutex
	pend    []byte
	marks   []logMark
	queued  bool  // in logs.ready
	lost    int64 // bytes dropped for want of queue room, not yet marked
	stopped bool

	// File side: the writer and readers.
	fileMu      sync.Mutex
	scanned     bool // the directory was read: tenancy and seg are known
	tenancy     int
	seg         int
	f           logFile
	size        int64
	atLineStart bool
	failed      error // the write error of the current run of failures
	failedBytes int64 // bytes lost in that run
	spare       []byte
	spareMarks  []logMark
}

// logMark is an event at offset off of the queue: a chunk arriving at at,
// a tenancy starting, or output lost to a full queue.
type logMark struct {
	off     int
	at      time.Time
	tenancy bool
	lost    int64
}

// record queues p (arrived at at); it never blocks.
func (n *nodeLog) record(p []byte, at time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	if len(n.pend)+len(p) > n.logs.cfg.QueueBytes {
		n.lost += int64(len(p))
		n.logs.dropped.Add(int64(len(p)))
		n.queueLocked()
		return
	}
	if n.lost > 0 {
		n.marks = append(n.marks, logMark{off: len(n.pend), at: at, lost: n.lost})
		n.lost = 0
	}
	if len(n.marks) < maxLogMarks {
		n.marks = append(n.marks, logMark{off: len(n.pend), at: at})
	}
	n.pend = append(n.pend, p...)
	n.queueLocked()
}

// newTenancy queues a tenancy boundary; it never blocks.
func (n *nodeLog) newTenancy(at time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	n.marks = append(n.marks, logMark{off: len(n.pend), at: at, tenancy: true})
	n.queueLocked()
}

func (n *nodeLog) queueLocked() {
	if !n.queued {
		n.queued = true
		n.logs.enqueue(n)
	}
}

// flush writes what is queued.
func (n *nodeLog) flush() {
	n.fileMu.Lock()
	defer n.fileMu.Unlock()
	n.flushLocked()
}

// close writes what is queued, refuses more and closes the file.
func (n *nodeLog) close() {
	n.fileMu.Lock()
	defer n.fileMu.Unlock()
	n.flushLocked()
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	if n.f != nil {
		n.f.Close()
		n.f = nil
	}
}

// flushLocked writes the queue to the files; fileMu is held.
func (n *nodeLog) flushLocked() {
	n.mu.Lock()
	pend, marks := n.pend, n.marks
	n.pend, n.marks = n.spare[:0], n.spareMarks[:0]
	n.queued = false
	n.mu.Unlock()
	defer func() {
		n.spare, n.spareMarks = pend[:0], marks[:0]
		if cap(pend) > keepSpareBytes || cap(marks) > maxLogMarks/4 {
			n.spare, n.spareMarks = nil, nil
		}
	}()
	if len(pend) == 0 && len(marks) == 0 {
		return
	}
	n.scanLocked()
	var out []byte
	for i, m := range marks {
		end := len(pend)
		if i+1 < len(marks) {
			end = marks[i+1].off
		}
		switch {
		case m.tenancy:
			out = n.writeLocked(out)
			n.startTenancyLocked()
		case m.lost > 0:
			out = n.appendMarker(out, m.at, fmt.Sprintf("%d bytes of console output not logged: the log writer fell behind", m.lost))
		}
		out = n.appendLines(out, pend[m.off:end], m.at)
	}
	n.writeLocked(out)
}

// appendLines appends chunk to out with a timestamp at the start of each
// line. Before a line that would take the file past MaxBytes it writes out
// and rotates. A line that does not fit in what is left of the file (a
// line longer than a file, or a console that never prints a newline) is
// broken with an added newline where the file ends, and goes on in the
// next file under a timestamp of its own: no line spans two files.
func (n *nodeLog) appendLines(out, chunk []byte, at time.Time) []byte {
	limit := n.logs.cfg.MaxBytes
	for len(chunk) > 0 {
		line := chunk
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			line = chunk[:i+1]
		}
		prefix := int64(0)
		if n.atLineStart {
			prefix = int64(len(timestampLayout) + 1)
		}
		used := n.size + int64(len(out))
		if n.atLineStart && used > 0 && used+prefix+int64(len(line)) > limit {
			out = n.writeLocked(out)
			n.rotateLocked()
			used = 0
		}
		if n.atLineStart {
			out = at.UTC().AppendFormat(out, timestampLayout)
			out = append(out, ' ')
		}
		room := limit - used - prefix
		ends := line[len(line)-1] == '\n'
		if int64(len(line)) > room || (int64(len(line)) == room && !ends) {
			piece := max(room-1, 0) // and the added newline: the file is full
			out = append(out, line[:piece]...)
			out = append(out, '\n')
			chunk = chunk[piece:]
			n.atLineStart = true
			continue
		}
		out = append(out, line...)
		chunk = chunk[len(line):]
		n.atLineStart = ends
	}
	return out
}

// timestampLayout is RFC 3339 in UTC with milliseconds, fixed width.
const timestampLayout = "2006-01-02T15:04:05.000Z"

// appendMarker appends an obmd note as a line of its own.
func (n *nodeLog) appendMarker(out []byte, at time.Time, note string) []byte {
	if !n.atLineStart {
		out = append(out, '\n')
		n.atLineStart = true
	}
	return n.appendLines(out, []byte("[obmd: "+note+"]\n"), at)
}

// writeLocked appends out to the current file (opening it if needed) and
// returns out emptied for reuse. A failure drops out and is counted.
func (n *nodeLog) writeLocked(out []byte) []byte {
	if len(out) == 0 {
		return out
	}
	err := n.openLocked()
	if err == nil {
		var k int
		k, err = n.f.Write(out)
		n.size += int64(k)
		n.logs.bytes.Add(int64(k))
		if err == nil {
			if n.failed != nil {
				n.logs.log.Info("console log writes work again", "node", n.id, "lost_bytes", n.failedBytes, "after", n.failed)
				n.failed, n.failedBytes = nil, 0
			}
			return out[:0]
		}
		out = out[k:]
		// The file may end mid-line: the next write starts a fresh one.
		n.f.Close()
		n.f = nil
	}
	n.logs.writeErrors.Add(1)
	n.logs.dropped.Add(int64(len(out)))
	if n.failed == nil {
		n.logs.log.Warn("console log write failed; dropping console output until writes work again",
			"node", n.id, "file", n.fileName(), "err", err)
	}
	n.failed = err
	n.failedBytes += int64(len(out))
	n.atLineStart = true
	return out[:0]
}

// openLocked opens the current file for appending if it is not open.
func (n *nodeLog) openLocked() error {
	if n.f != nil {
		return nil
	}
	fsys := n.logs.cfg.fs
	if err := fsys.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	f, err := fsys.OpenFile(n.fileName(), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	size := fi.Size()
	if size > 0 {
		// Reopened after a failed write or a restart, the file may end in
		// the middle of a line: what comes now starts a line of its own.
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err == nil && last[0] != '\n' {
			k, err := f.Write([]byte{'\n'})
			size += int64(k)
			if err != nil {
				f.Close()
				return err
			}
		}
	}
	n.f, n.size = f, size
	return nil
}

func (n *nodeLog) fileName() string {
	return filepath.Join(n.dir, logFileName(n.tenancy, n.seg))
}

func logFileName(tenancy, seg int) string {
	return fmt.Sprintf("%06d-%06d.log", tenancy, seg)
}

// parseLogFileName reads "<tenancy>-<segment>.log".
func parseLogFileName(name string) (tenancy, seg int, ok bool) {
	base, found := strings.CutSuffix(name, ".log")
	t, s, dash := strings.Cut(base, "-")
	if !found || !dash || len(t) != 6 || len(s) != 6 {
		return 0, 0, false
	}
	ti, err1 := strconv.Atoi(t)
	si, err2 := strconv.Atoi(s)
	return ti, si, err1 == nil && err2 == nil && ti >= 0 && si >= 0
}

// rotateLocked closes the current file and moves to the next segment.
func (n *nodeLog) rotateLocked() {
	n.closeFileLocked()
	n.seg++
	n.size = 0
	n.pruneLocked()
}

// startTenancyLocked moves to a new tenancy's first file, created at once
// so that the split is on disk (and survives a restart) even before the
// console prints anything.
func (n *nodeLog) startTenancyLocked() {
	n.closeFileLocked()
	n.tenancy++
	n.seg, n.size, n.atLineStart = 0, 0, true
	if err := n.openLocked(); err != nil {
		n.logs.writeErrors.Add(1)
		n.logs.log.Warn("console log: cannot start the new tenancy's file", "node", n.id, "file", n.fileName(), "err", err)
	}
	n.pruneLocked()
}

func (n *nodeLog) closeFileLocked() {
	if n.f != nil {
		if err := n.f.Close(); err != nil {
			n.logs.writeErrors.Add(1)
			n.logs.log.Warn("console log: closing a file failed", "node", n.id, "err", err)
		}
		n.f = nil
	}
}

// files lists the node's log files, oldest first.
func (n *nodeLog) files() ([]logFileID, error) {
	entries, err := n.logs.cfg.fs.ReadDir(n.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []logFileID
	for _, e := range entries {
		if t, s, ok := parseLogFileName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, logFileID{t, s})
		}
	}
	slices.SortFunc(out, func(a, b logFileID) int {
		if a.tenancy != b.tenancy {
			return a.tenancy - b.tenancy
		}
		return a.seg - b.seg
	})
	return out, nil
}

type logFileID struct{ tenancy, seg int }

// scanLocked learns where the log left off (after a restart: the newest
// file, whose tenancy is still current, since tokens persist); the first
// tenancy is 1.
func (n *nodeLog) scanLocked() {
	if n.scanned {
		return
	}
	n.scanned = true
	n.tenancy = 1
	files, err := n.files()
	if err != nil {
		n.logs.log.Warn("console log: cannot read the node's log directory", "node", n.id, "dir", n.dir, "err", err)
		return
	}
	if len(files) > 0 {
		last := files[len(files)-1]
		n.tenancy, n.seg = last.tenancy, last.seg
	}
}

// pruneLocked removes the oldest files beyond Keep, never the current one.
func (n *nodeLog) pruneLocked() {
	files, err := n.files()
	if err != nil {
		return
	}
	cur := logFileID{n.tenancy, n.seg}
	// The current file counts even before it exists.
	extra := len(files) - n.logs.cfg.Keep
	if !slices.Contains(files, cur) {
		extra++
	}
	for _, f := range files {
		if extra <= 0 {
			break
		}
		if f == cur {
			continue
		}
		if err := n.logs.cfg.fs.Remove(filepath.Join(n.dir, logFileName(f.tenancy, f.seg))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			n.logs.log.Warn("console log: removing an old file failed", "node", n.id, "err", err)
		}
		extra--
	}
}

// ConsoleLog is one tenancy's console log, as GET
// /node/{node_id}/console_log returns it.
type ConsoleLog struct {
	// Tenancy is the tenancy shown; Tenancies are those with files left,
	// oldest first (the current one last).
	Tenancy   int
	Current   int
	Tenancies []int
	// Size is the length of Content.
	Size    int64
	Content io.ReadCloser
}

// read opens tenancy's files (0: the current tenancy) after writing what is
// queued, so that the log holds everything the console printed so far.
func (n *nodeLog) read(tenancy int) (*ConsoleLog, error) {
	n.fileMu.Lock()
	defer n.fileMu.Unlock()
	n.flushLocked()
	n.scanLocked()
	files, err := n.files()
	if err != nil {
		return nil, &Error{Kind: ErrInternal, Reason: "reading the console log directory", Err: err}
	}
	cl := &ConsoleLog{Tenancy: tenancy, Current: n.tenancy}
	if tenancy == 0 {
		cl.Tenancy = n.tenancy
	}
	var readers []io.Reader
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	for _, f := range files {
		if len(cl.Tenancies) == 0 || cl.Tenancies[len(cl.Tenancies)-1] != f.tenancy {
			cl.Tenancies = append(cl.Tenancies, f.tenancy)
		}
		if f.tenancy != cl.Tenancy {
			continue
		}
		// Opened under fileMu: a rotation cannot remove it in between,
		// and once open it stays readable if pruned later. Only what it
		// holds now is read: the writer may append meanwhile.
		fh, err := n.logs.cfg.fs.OpenFile(filepath.Join(n.dir, logFileName(f.tenancy, f.seg)), os.O_RDONLY, 0)
		if err != nil {
			closeAll()
			return nil, &Error{Kind: ErrInternal, Reason: "opening a console log file", Err: err}
		}
		fi, err := fh.Stat()
		if err != nil {
			fh.Close()
			closeAll()
			return nil, &Error{Kind: ErrInternal, Reason: "reading a console log file", Err: err}
		}
		cl.Size += fi.Size()
		readers = append(readers, io.NewSectionReader(fh, 0, fi.Size()))
		closers = append(closers, fh)
	}
	if tenancy != 0 && len(readers) == 0 {
		return nil, &Error{Kind: ErrNotFound, Reason: fmt.Sprintf("node %q has no console log for tenancy %d (tenancies with logs: %v)", n.id, tenancy, cl.Tenancies)}
	}
	cl.Content = &multiReadCloser{Reader: io.MultiReader(readers...), closers: closers}
	return cl, nil
}

type multiReadCloser struct {
	io.Reader
	closers []io.Closer
}

func (m *multiReadCloser) Close() error {
	for _, c := range m.closers {
		c.Close()
	}
	return nil
}
