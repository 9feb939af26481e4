package rmcpplus

// STUB FILE: the agreed client Session and BMC-side Server API. The session
// helper replaces each declaration with the real one in client.go /
// server.go (and friends) and deletes this file when empty.

import (
	"context"
	"log/slog"
	"net"
	"time"

	"obmd/ipmi"
)

// ClientConfig configures a client session to one BMC.
type ClientConfig struct {
	Addr      string // host or host:port (default port 623)
	Username  string
	Password  []byte              // never logged
	Kg        []byte              // BMC key; empty means use the password
	Privilege ipmi.PrivilegeLevel // default Administrator; sent explicitly in Open Session and RAKP 1
	// CipherSuite pins the suite; 0 means negotiate (prefer 17, then 3).
	CipherSuite uint8
	Timeout     time.Duration // per attempt
	Retries     int           // retransmissions after the first attempt
	KeepAlive   time.Duration // idle interval before a keepalive command
	// PacketConn, if set, is used instead of a fresh UDP socket (tests put a
	// fault injector here). The Session owns and closes it.
	PacketConn net.PacketConn
	Logger     *slog.Logger
}

// Session is an established RMCP+ session, safe for concurrent callers.
type Session struct{}

// Dial performs the RMCP+ handshake and sets the session privilege.
func Dial(ctx context.Context, cfg ClientConfig) (*Session, error) { return nil, errStub }

// Do sends one IPMI request and returns the response data after the
// completion code. A non-zero completion code is an *ipmi.CompletionError.
func (s *Session) Do(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error) {
	return nil, errStub
}

// OpenPayload returns a channel for a non-IPMI payload type (SOL) carried
// on this session, at port (0 = the session's own port).
func (s *Session) OpenPayload(pt PayloadType, port int) (*PayloadConn, error) { return nil, errStub }

// Done is closed when the session ends; Err says why.
func (s *Session) Done() <-chan struct{} { return nil }
func (s *Session) Err() error            { return errStub }

// Close sends Close Session (best effort) and releases the socket.
func (s *Session) Close() error { return errStub }

// PayloadConn carries one payload type's packets on a session.
type PayloadConn struct{}

func (p *PayloadConn) Send(payload []byte) error { return errStub }
func (p *PayloadConn) Recv() <-chan []byte       { return nil }
func (p *PayloadConn) Close() error              { return errStub }

// ServerConfig configures the BMC side of RMCP+ for one simulated BMC.
type ServerConfig struct {
	GUID         [16]byte
	Users        func(name string) (password []byte, maxPriv ipmi.PrivilegeLevel, ok bool)
	Kg           []byte
	CipherSuites []uint8 // offered; default 17, 3, 2, 1
	AllowSuite0  bool
	MaxSessions  int
	IdleTimeout  time.Duration
	Handler      Handler
}

// Handler serves the IPMI commands the session layer does not handle
// itself. It returns the completion code and the response data after it.
type Handler interface {
	ServeIPMI(s *ServerSession, req *ipmi.Message) (ipmi.CompletionCode, []byte)
}

// ServerSession is one active session on the BMC side.
type ServerSession struct{}

func (s *ServerSession) ID() uint32                                               { return 0 }
func (s *ServerSession) Username() string                                         { return "" }
func (s *ServerSession) Privilege() ipmi.PrivilegeLevel                           { return 0 }
func (s *ServerSession) SendPayload(pt PayloadType, b []byte) error               { return errStub }
func (s *ServerSession) SetPayloadHandler(pt PayloadType, h func(payload []byte)) {}
func (s *ServerSession) Done() <-chan struct{}                                    { return nil }

// Server accepts RMCP+ sessions for one BMC.
type Server struct{}

func NewServer(cfg ServerConfig) *Server          { return nil }
func (s *Server) Serve(conn net.PacketConn) error { return errStub }
func (s *Server) DropAllSessions()                {}
func (s *Server) Close() error                    { return errStub }
