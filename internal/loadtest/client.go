package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/rawio"
)

// This file is a deliberately small Engine.IO v4 / Socket.IO v5 client over
// websocket only. The load tool uses it instead of the library client
// (internal/testclient) because the tool shares two cores with the servers
// it measures: per connection this client holds one goroutine, a 1 KiB read
// buffer and no write buffer while idle (write buffers come from a shared
// pool), and it decodes only the event name of a frame unless the scenario
// asks for more. It supports exactly what the tool needs: the "/" namespace,
// handshake auth, events with and without acks, acks, connect errors and
// the ping/pong heartbeat. No polling, no reconnection, no binary packets.

// Event is one server event handed to a Handler. Name and Data alias the
// client's read buffer and are valid only during the call.
type Event struct {
	Name []byte
	// Data is the raw JSON of the event's argument (nil without one).
	Data []byte
	// At is when the frame was read.
	At time.Time
}

// Handler receives the events of a client, on the client's reader goroutine:
// it must not block.
type Handler func(c *Client, ev Event)

// DialOptions configure one connection.
type DialOptions struct {
	// URL is the node's base URL: http://host:port (or https, ws, wss).
	URL string
	// Auth is the raw JSON handshake auth object, e.g. {"token":"..."}.
	Auth []byte
	// Timeout bounds the whole handshake (websocket upgrade, Engine.IO
	// open, Socket.IO connect). Default 10 s.
	Timeout time.Duration
	// Handler receives server events; nil drops them.
	Handler Handler
	// Tag is the caller's index for this connection, returned by Tag.
	Tag int
	// Header is sent with the websocket upgrade request.
	Header http.Header
}

// ConnectError is a handshake refused by the server with a Socket.IO
// connect error (`44{...}`); Code is data.code (e.g. "unauthorized").
type ConnectError struct {
	Code    string
	Message string
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connect_error %s: %s", e.Code, e.Message)
}

// ErrClosed is returned for acks pending when the connection closed.
var ErrClosed = errors.New("connection closed")

var (
	errEngineClose      = errors.New("engine.io close packet")
	errServerDisconnect = errors.New("socket.io disconnect packet")
)

// closeReason names why a connection stopped, briefly, for the error table.
func closeReason(err error) string {
	var ce *websocket.CloseError
	switch {
	case err == nil:
		return "closed"
	case errors.Is(err, errEngineClose):
		return "server engine.io close"
	case errors.Is(err, errServerDisconnect):
		return "server socket.io disconnect"
	case errors.As(err, &ce):
		return fmt.Sprintf("websocket close %d", ce.Code)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, errPacket):
		return "malformed frame"
	case strings.Contains(err.Error(), "connection reset"):
		return "reset"
	case strings.Contains(err.Error(), "timeout"):
		return "timeout"
	default:
		return "transport error"
	}
}

// ErrAckTimeout is returned when no ack arrived in time.
var ErrAckTimeout = errors.New("no ack in time")

// Ack is an acknowledgement: Switchboard answers {success, ...} or
// {success:false, error, code}.
type Ack struct {
	Success bool   `json:"success"`
	Code    string `json:"code"`
	Error   string `json:"error"`
	// Raw is the whole ack object, for the fields a scenario needs.
	Raw json.RawMessage `json:"-"`
}

// Client is one Socket.IO connection on the "/" namespace.
type Client struct {
	ws      *websocket.Conn
	tag     int
	handler Handler

	// wmu serialises writes: gorilla allows one concurrent writer.
	wmu  sync.Mutex
	wbuf []byte

	amu    sync.Mutex
	nextID int64
	acks   map[int64]chan Ack
	closed bool

	done     chan struct{}
	readErr  error
	received atomic.Int64
	// lastPing and stopped are mono() times: the last server ping answered
	// and the end of the reader, to tell why a connection dropped.
	lastPing atomic.Int64
	stopped  atomic.Int64

	// SentConnect is when the Socket.IO connect packet was written (the
	// server authenticates, and announces presence, after reading it).
	SentConnect time.Time
	// Connected is when the connect was acknowledged.
	Connected time.Time
	// Started is when Dial began.
	Started time.Time
}

// Shared write buffers: an idle connection holds none.
var writePool = &sync.Pool{}

// The connections read and write with raw system calls (rawio, as the
// node's Redis connections do): the tool shares the cores with the servers
// it measures, and each ordinary system call woke the runtime's monitor
// thread from its deep sleep, which then took a sixth of the tool's CPU.
var dialer = &websocket.Dialer{
	NetDialContext:   rawio.Dialer(&net.Dialer{}),
	ReadBufferSize:   1024,
	WriteBufferSize:  1024,
	WriteBufferPool:  writePool,
	HandshakeTimeout: 10 * time.Second,
}

// wsURL turns a node base URL into the Engine.IO websocket endpoint.
func wsURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("unsupported scheme %q in %s", u.Scheme, base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/socket.io/"
	u.RawQuery = "EIO=4&transport=websocket"
	return u.String(), nil
}

// Dial opens a websocket to o.URL, completes the Engine.IO and Socket.IO
// handshakes with o.Auth, and starts the reader. A refused handshake
// returns *ConnectError.
func Dial(ctx context.Context, o DialOptions) (*Client, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	target, err := wsURL(o.URL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	c := &Client{tag: o.Tag, handler: o.Handler, acks: map[int64]chan Ack{}, done: make(chan struct{}), Started: time.Now()}
	ws, resp, err := dialer.DialContext(ctx, target, o.Header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	c.ws = ws
	deadline, _ := ctx.Deadline()
	_ = ws.SetReadDeadline(deadline)
	// Engine.IO open packet.
	p, err := c.readPacket(nil)
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("engine.io open: %w", err)
	}
	if p.EIO != eioOpen {
		ws.Close()
		return nil, fmt.Errorf("engine.io open: unexpected packet type %q", p.EIO)
	}
	var op openPacket
	if err := json.Unmarshal(p.Data, &op); err != nil || op.SID == "" {
		ws.Close()
		return nil, fmt.Errorf("engine.io open: bad handshake %q", p.Data)
	}
	// Socket.IO connect with auth.
	c.SentConnect = time.Now()
	if err := c.write(AppendConnect(nil, "/", o.Auth)); err != nil {
		ws.Close()
		return nil, fmt.Errorf("socket.io connect: %w", err)
	}
	var buf []byte
	for i := 0; ; i++ {
		if i >= 16 {
			ws.Close()
			return nil, errors.New("socket.io connect: no answer in 16 packets")
		}
		var p Packet
		p, err = c.readPacket(&buf)
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("socket.io connect: %w", err)
		}
		if p.EIO == eioPing {
			if err := c.write([]byte{eioPong}); err != nil {
				ws.Close()
				return nil, err
			}
			continue
		}
		if p.EIO != eioMessage || p.Namespace != "/" {
			continue
		}
		if p.SIO == sioConnectError {
			ws.Close()
			var ce connectError
			_ = json.Unmarshal(p.Data, &ce)
			msg := ce.Data.Message
			if msg == "" {
				msg = ce.Message
			}
			return nil, &ConnectError{Code: ce.Data.Code, Message: msg}
		}
		if p.SIO == sioConnect {
			break
		}
	}
	c.Connected = time.Now()
	_ = ws.SetReadDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

// readPacket reads one text frame into *buf (reused; nil allocates).
func (c *Client) readPacket(buf *[]byte) (Packet, error) {
	var local []byte
	if buf == nil {
		buf = &local
	}
	if err := c.readFrame(buf); err != nil {
		return Packet{}, err
	}
	return ParsePacket(*buf)
}

// maxKeptBuffer bounds the read buffer a connection keeps between frames: a
// rare large frame does not pin its size on an idle connection.
const maxKeptBuffer = 16 << 10

// maxFrame refuses absurd frames (the server's own limit is 64 KiB payload
// plus the meeting object).
const maxFrame = 4 << 20

func (c *Client) readFrame(buf *[]byte) error {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return err
	}
	if typ != websocket.TextMessage {
		return fmt.Errorf("%w: binary frame", errPacket)
	}
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			if len(b) >= maxFrame {
				return fmt.Errorf("%w: frame larger than %d bytes", errPacket, maxFrame)
			}
			nb := make([]byte, len(b), max(2*cap(b), 512))
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	*buf = b
	return nil
}

func (c *Client) readLoop() {
	var buf []byte
	var err error
	defer func() { c.shutdown(err) }()
	for {
		if cap(buf) > maxKeptBuffer {
			buf = nil
		}
		if err = c.readFrame(&buf); err != nil {
			return
		}
		at := time.Now()
		var p Packet
		if p, err = ParsePacket(buf); err != nil {
			return
		}
		c.received.Add(1)
		switch p.EIO {
		case eioPing:
			if err = c.write([]byte{eioPong}); err != nil {
				return
			}
			c.lastPing.Store(mono(time.Now()))
		case eioClose:
			err = errEngineClose
			return
		case eioMessage:
			switch p.SIO {
			case sioEvent:
				if c.handler == nil {
					continue
				}
				name, arg, perr := SplitEvent(p.Data)
				if perr != nil {
					err = perr
					return
				}
				c.handler(c, Event{Name: name, Data: arg, At: at})
			case sioAck:
				c.deliverAck(p.ID, p.Data)
			case sioDisconnect:
				err = errServerDisconnect
				return
			case sioBinaryEvent, sioBinaryAck:
				err = fmt.Errorf("%w: binary packets are not supported", errPacket)
				return
			}
		}
	}
}

func (c *Client) deliverAck(id int64, data []byte) {
	c.amu.Lock()
	ch := c.acks[id]
	delete(c.acks, id)
	c.amu.Unlock()
	if ch == nil {
		return
	}
	var a Ack
	arg, err := FirstArg(data)
	if err == nil && arg != nil {
		a.Raw = append(json.RawMessage(nil), arg...)
		if json.Unmarshal(a.Raw, &a) != nil {
			a = Ack{Code: "malformed_ack", Raw: a.Raw}
		}
	} else {
		a.Code = "malformed_ack"
	}
	ch <- a // buffered 1, sent once
}

// shutdown runs once when the reader stops: it fails every pending ack.
func (c *Client) shutdown(err error) {
	c.stopped.Store(mono(time.Now()))
	c.amu.Lock()
	c.closed = true
	c.readErr = err
	pending := c.acks
	c.acks = nil
	c.amu.Unlock()
	for _, ch := range pending {
		ch <- Ack{Code: "closed"}
	}
	_ = c.ws.Close()
	close(c.done)
}

const writeTimeout = 5 * time.Second

func (c *Client) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// Emit sends an event without an ack. payload is raw JSON (nil: none).
func (c *Client) Emit(name string, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = AppendEvent(c.wbuf[:0], "/", -1, name, payload)
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := c.ws.WriteMessage(websocket.TextMessage, c.wbuf)
	c.trimBuf()
	return err
}

func (c *Client) trimBuf() {
	if cap(c.wbuf) > maxKeptBuffer {
		c.wbuf = nil
	}
}

// EmitAck sends an event with an ack id and waits for the ack up to
// timeout. It returns ErrAckTimeout or ErrClosed when none comes; an ack
// that says success:false is returned as an Ack, not an error.
func (c *Client) EmitAck(name string, payload []byte, timeout time.Duration) (Ack, error) {
	ch := make(chan Ack, 1)
	c.amu.Lock()
	if c.closed {
		c.amu.Unlock()
		return Ack{}, ErrClosed
	}
	id := c.nextID
	c.nextID++
	c.acks[id] = ch
	c.amu.Unlock()

	c.wmu.Lock()
	c.wbuf = AppendEvent(c.wbuf[:0], "/", id, name, payload)
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := c.ws.WriteMessage(websocket.TextMessage, c.wbuf)
	c.trimBuf()
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return Ack{}, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a := <-ch:
		if a.Code == "closed" && a.Raw == nil {
			return Ack{}, ErrClosed
		}
		return a, nil
	case <-t.C:
		c.forget(id)
		return Ack{}, ErrAckTimeout
	}
}

func (c *Client) forget(id int64) {
	c.amu.Lock()
	if c.acks != nil {
		delete(c.acks, id)
	}
	c.amu.Unlock()
}

// Tag returns DialOptions.Tag.
func (c *Client) Tag() int { return c.tag }

// Received counts the frames read since the handshake (events, acks, pings).
func (c *Client) Received() int64 { return c.received.Load() }

// Done is closed when the connection has stopped.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection stopped (nil while it runs or after Close).
func (c *Client) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.amu.Lock()
	defer c.amu.Unlock()
	return c.readErr
}

// PingBeforeStop returns, for a stopped connection, how long before the stop
// it last answered a server ping (false: it never did, or it still runs).
// A stop one ping timeout (20 s by default) after an answered ping means the
// server declared the pong missing although it was sent.
func (c *Client) PingBeforeStop() (time.Duration, bool) {
	st, p := c.stopped.Load(), c.lastPing.Load()
	if st == 0 || p == 0 {
		return 0, false
	}
	return time.Duration(st - p), true
}

// Close leaves the namespace cleanly (a Socket.IO disconnect packet, as an
// app that logs out would) and closes the connection, waiting up to 2 s for
// the reader to stop.
func (c *Client) Close() {
	_ = c.write(AppendDisconnect(nil, "/"))
	c.Abort()
}

// Abort closes the connection without a goodbye (as a killed app or a lost
// network would) and waits up to 2 s for the reader to stop.
func (c *Client) Abort() {
	_ = c.ws.Close()
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
}
