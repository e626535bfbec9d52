package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	json "github.com/goccy/go-json"
)

// Engine.IO v4 packet types (the first byte of every websocket text frame).
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioUpgrade = '5'
	eioNoop    = '6'
)

// Socket.IO v5 packet types (the byte after an Engine.IO message '4').
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
	sioBinaryEvent  = '5'
	sioBinaryAck    = '6'
)

// Packet is one decoded Engine.IO frame, and for Engine.IO messages the
// Socket.IO packet inside it.
//
// Wire shape of a Socket.IO packet carried in an Engine.IO message:
//
//	4 <type> [<attachments>-] [<namespace>,] [<ack id>] [<json data>]
//
// The namespace is present only when it is not "/". Examples:
//
//	42["call:incoming",{...}]        event on "/"
//	4212["call:create",{...}]        event on "/" with ack id 12
//	4312[{"success":true}]           ack 12
//	40{"token":"..."}                connect to "/" with auth
//	44{"message":"...","data":{}}    connect error
//	42/external,["x",{}]             event on "/external"
type Packet struct {
	// EIO is the Engine.IO type ('0'..'6').
	EIO byte
	// SIO is the Socket.IO type ('0'..'6') when EIO is '4', else 0.
	SIO byte
	// Namespace is "/" unless the packet names another one.
	Namespace string
	// ID is the ack id, or -1 when the packet has none.
	ID int64
	// Data is the raw JSON that follows (the open packet's object for
	// EIO '0'; the event array, ack array or connect object for EIO '4').
	// It aliases the input frame.
	Data []byte
}

// errPacket is matched by every decoding error.
var errPacket = errors.New("malformed packet")

// ParsePacket decodes one websocket text frame. It does not copy: Data
// aliases frame.
func ParsePacket(frame []byte) (Packet, error) {
	p := Packet{Namespace: "/", ID: -1}
	if len(frame) == 0 {
		return p, fmt.Errorf("%w: empty frame", errPacket)
	}
	p.EIO = frame[0]
	rest := frame[1:]
	switch p.EIO {
	case eioOpen, eioClose, eioPing, eioPong, eioUpgrade, eioNoop:
		p.Data = rest
		return p, nil
	case eioMessage:
	default:
		return p, fmt.Errorf("%w: unknown engine.io type %q", errPacket, p.EIO)
	}
	if len(rest) == 0 {
		return p, fmt.Errorf("%w: empty socket.io packet", errPacket)
	}
	p.SIO = rest[0]
	if p.SIO < sioConnect || p.SIO > sioBinaryAck {
		return p, fmt.Errorf("%w: unknown socket.io type %q", errPacket, p.SIO)
	}
	rest = rest[1:]
	if p.SIO == sioBinaryEvent || p.SIO == sioBinaryAck {
		// Attachments count "<n>-"; the load tool never expects binary
		// payloads, so it only skips the count and lets the caller refuse.
		i := bytes.IndexByte(rest, '-')
		if i < 0 {
			return p, fmt.Errorf("%w: binary packet without attachment count", errPacket)
		}
		rest = rest[i+1:]
	}
	if len(rest) > 0 && rest[0] == '/' {
		i := bytes.IndexByte(rest, ',')
		if i < 0 {
			// "40/external" connects without data.
			p.Namespace, rest = string(rest), nil
		} else {
			p.Namespace, rest = string(rest[:i]), rest[i+1:]
		}
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i > 0 {
		id, err := strconv.ParseInt(string(rest[:i]), 10, 64)
		if err != nil {
			return p, fmt.Errorf("%w: ack id: %v", errPacket, err)
		}
		p.ID, rest = id, rest[i:]
	}
	if (p.SIO == sioEvent || p.SIO == sioAck) && (len(rest) == 0 || rest[0] != '[') {
		return p, fmt.Errorf("%w: event or ack data must be an array", errPacket)
	}
	if p.SIO == sioAck && p.ID < 0 {
		return p, fmt.Errorf("%w: ack without id", errPacket)
	}
	p.Data = rest
	return p, nil
}

// SplitEvent splits the data of an event packet, `["name",arg,...]`, into
// the event name and the raw JSON of its first argument (nil when there is
// none). The name bytes and the argument alias data.
func SplitEvent(data []byte) (name []byte, arg []byte, err error) {
	if len(data) < 4 || data[0] != '[' || data[1] != '"' || data[len(data)-1] != ']' {
		return nil, nil, fmt.Errorf("%w: event array", errPacket)
	}
	// Find the closing quote of the name. Event names with escapes are
	// decoded the slow way.
	end := -1
	for i := 2; i < len(data); i++ {
		if data[i] == '\\' {
			return splitEventSlow(data)
		}
		if data[i] == '"' {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, nil, fmt.Errorf("%w: unterminated event name", errPacket)
	}
	name = data[2:end]
	rest := bytes.TrimSpace(data[end+1 : len(data)-1])
	if len(rest) == 0 {
		return name, nil, nil
	}
	if rest[0] != ',' {
		return nil, nil, fmt.Errorf("%w: expected ',' after event name", errPacket)
	}
	rest = bytes.TrimSpace(rest[1:])
	if len(rest) == 0 {
		return nil, nil, fmt.Errorf("%w: missing argument after ','", errPacket)
	}
	// The remainder is returned unvalidated: Switchboard sends exactly one
	// argument, and scanning every frame (most are presence broadcasts the
	// tool only counts) would double the client's cost. With several
	// arguments the remainder is not one JSON value, and decoding it fails
	// loudly instead of reading the wrong data.
	return name, rest, nil
}

func splitEventSlow(data []byte) ([]byte, []byte, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(data, &arr); err != nil || len(arr) == 0 {
		return nil, nil, fmt.Errorf("%w: event array", errPacket)
	}
	var name string
	if err := json.Unmarshal(arr[0], &name); err != nil {
		return nil, nil, fmt.Errorf("%w: event name", errPacket)
	}
	var arg []byte
	if len(arr) > 1 {
		arg = arr[1]
	}
	return []byte(name), arg, nil
}

// FirstArg returns the raw JSON of the first element of an ack array,
// `[{...}]` (nil for `[]`).
func FirstArg(data []byte) ([]byte, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(data, &arr); err != nil {
		return nil, fmt.Errorf("%w: ack array", errPacket)
	}
	if len(arr) == 0 {
		return nil, nil
	}
	return arr[0], nil
}

// AppendEvent appends the frame of an event on namespace ns (""/"/" for
// the main one) with ack id id (-1: no ack) and one argument payload (raw
// JSON; nil: no argument).
func AppendEvent(dst []byte, ns string, id int64, name string, payload []byte) []byte {
	dst = append(dst, eioMessage, sioEvent)
	dst = appendNamespace(dst, ns)
	if id >= 0 {
		dst = strconv.AppendInt(dst, id, 10)
	}
	dst = append(dst, '[')
	dst = strconv.AppendQuote(dst, name)
	if payload != nil {
		dst = append(dst, ',')
		dst = append(dst, payload...)
	}
	return append(dst, ']')
}

// AppendConnect appends the namespace connect frame with the handshake auth
// object (raw JSON; nil: none).
func AppendConnect(dst []byte, ns string, auth []byte) []byte {
	dst = append(dst, eioMessage, sioConnect)
	if ns != "" && ns != "/" {
		dst = append(dst, ns...)
		if auth != nil {
			dst = append(dst, ',')
		}
	}
	return append(dst, auth...)
}

// AppendDisconnect appends the namespace disconnect frame.
func AppendDisconnect(dst []byte, ns string) []byte {
	dst = append(dst, eioMessage, sioDisconnect)
	if ns != "" && ns != "/" {
		dst = append(dst, ns...)
		dst = append(dst, ',')
	}
	return dst
}

func appendNamespace(dst []byte, ns string) []byte {
	if ns != "" && ns != "/" {
		dst = append(dst, ns...)
		dst = append(dst, ',')
	}
	return dst
}

// openPacket is the Engine.IO handshake object.
type openPacket struct {
	SID          string `json:"sid"`
	PingInterval int64  `json:"pingInterval"`
	PingTimeout  int64  `json:"pingTimeout"`
	MaxPayload   int64  `json:"maxPayload"`
}

// connectError is the data of a Socket.IO connect error packet (`44{...}`):
// Switchboard puts {code, message} in data.
type connectError struct {
	Message string `json:"message"`
	Data    struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"data"`
}
