package adapter

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Request types of @socket.io/redis-adapter 8.x (and the emitter's subset).
const (
	reqSockets              = 0
	reqAllRooms             = 1
	reqRemoteJoin           = 2
	reqRemoteLeave          = 3
	reqRemoteDisconnect     = 4
	reqRemoteFetch          = 5
	reqServerSideEmit       = 6
	reqBroadcast            = 7
	reqBroadcastClientCount = 8
	reqBroadcastAck         = 9
)

// Socket.IO packet types that may travel as broadcasts.
const (
	packetEvent       = 2
	packetBinaryEvent = 5
)

// wirePacket is the socket.io packet object inside a broadcast:
// {type, data, nsp}, as the Node adapter and emitter write it.
type wirePacket struct {
	Type int    `msgpack:"type"`
	Data []any  `msgpack:"data"`
	Nsp  string `msgpack:"nsp"`
}

// wireFlags is the subset of socket.io broadcast flags that crosses nodes.
// Timeout (milliseconds) is only set on BROADCAST (with ack) requests.
type wireFlags struct {
	Volatile bool   `msgpack:"volatile,omitempty"`
	Compress *bool  `msgpack:"compress,omitempty"`
	Timeout  *int64 `msgpack:"timeout,omitempty"`
}

// wireOpts is the third element of a broadcast: {rooms, except, flags}.
type wireOpts struct {
	Rooms  []string  `msgpack:"rooms"`
	Except []string  `msgpack:"except"`
	Flags  wireFlags `msgpack:"flags"`
}

// broadcastMessage is a decoded broadcast.
type broadcastMessage struct {
	UID      string
	Nsp      string
	Data     []any
	Rooms    []string
	Except   []string
	Volatile bool
	Compress *bool
}

// encodeBroadcast encodes `[uid, {type: 2, data, nsp}, {rooms, except,
// flags}]` with msgpack, byte-compatible with what notepack.io decodes in
// the Node adapter. rooms and except are always arrays (never nil).
func encodeBroadcast(uid, nsp string, data []any, rooms, except []string, flags wireFlags) ([]byte, error) {
	return encodeMsgpack([]any{
		uid,
		wirePacket{Type: packetEvent, Data: data, Nsp: nsp},
		wireOpts{Rooms: nonNil(rooms), Except: nonNil(except), Flags: flags},
	})
}

// broadcastPrefix is the start of every message encodeBroadcast makes for
// uid: a msgpack array of three whose first element is uid.
func broadcastPrefix(uid string) string {
	b, err := encodeMsgpack(uid)
	if err != nil {
		panic(err) // a string always encodes
	}
	return "\x93" + string(b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// decodeBroadcast decodes a message received on a broadcast channel. A
// packet without nsp belongs to "/" (as in the Node adapter). Only event
// packets whose data starts with an event name are accepted: anything else
// would be forwarded verbatim to clients.
func decodeBroadcast(payload string) (*broadcastMessage, error) {
	v, err := decodeMsgpack(strings.NewReader(payload))
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 3 {
		return nil, fmt.Errorf("%w: not [uid, packet, opts]", errMalformed)
	}
	m := &broadcastMessage{Nsp: "/"}
	m.UID, _ = arr[0].(string)
	packet, ok := arr[1].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: packet is %T", errMalformed, arr[1])
	}
	if t, ok := toInt(packet["type"]); !ok || (t != packetEvent && t != packetBinaryEvent) {
		return nil, fmt.Errorf("%w: packet type %v", errMalformed, packet["type"])
	}
	if nsp, ok := packet["nsp"].(string); ok {
		m.Nsp = nsp
	}
	m.Data, ok = packet["data"].([]any)
	if !ok || len(m.Data) == 0 {
		return nil, fmt.Errorf("%w: packet data is not a list", errMalformed)
	}
	if _, ok := m.Data[0].(string); !ok {
		return nil, fmt.Errorf("%w: event name is %T", errMalformed, m.Data[0])
	}
	opts, ok := arr[2].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: opts is %T", errMalformed, arr[2])
	}
	if m.Rooms, err = stringList(opts["rooms"]); err != nil {
		return nil, fmt.Errorf("%w: rooms: %w", errMalformed, err)
	}
	if m.Except, err = stringList(opts["except"]); err != nil {
		return nil, fmt.Errorf("%w: except: %w", errMalformed, err)
	}
	if flags, ok := opts["flags"].(map[string]any); ok {
		m.Volatile, _ = flags["volatile"].(bool)
		if c, ok := flags["compress"].(bool); ok {
			m.Compress = &c
		}
	}
	return m, nil
}

// stringList converts a decoded list of rooms; numbers become their
// JavaScript string form, a missing list is empty.
func stringList(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%T is not a list", v)
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		switch e := e.(type) {
		case string:
			out = append(out, e)
		case int64, uint64, float64, json.Number:
			out = append(out, scalarString(e))
		default:
			return nil, fmt.Errorf("room of type %T", e)
		}
	}
	return out, nil
}

// toInt reads an integral number from a decoded msgpack or JSON value.
func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case int64:
		return int(v), true
	case uint64:
		if v > 1<<31 {
			return 0, false
		}
		return int(v), true
	case float64:
		if v != float64(int(v)) {
			return 0, false
		}
		return int(v), true
	case json.Number:
		i, err := v.Int64()
		return int(i), err == nil
	}
	return 0, false
}

// message is a decoded request or response: JSON objects (most of them) or
// msgpack maps (BROADCAST requests and BROADCAST_ACK responses), told apart
// by the first byte as the Node adapter does.
type message map[string]any

// decodeMessage decodes a request or response.
func decodeMessage(payload string) (message, error) {
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty", errMalformed)
	}
	var v any
	if payload[0] == '{' {
		if err := json.Unmarshal([]byte(payload), &v); err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
	} else {
		var err error
		if v, err = decodeMsgpack(strings.NewReader(payload)); err != nil {
			return nil, err
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not an object", errMalformed, v)
	}
	return m, nil
}

func (m message) str(key string) string {
	s, _ := m[key].(string)
	return s
}

func (m message) typ() int {
	t, ok := toInt(m["type"])
	if !ok {
		return -1
	}
	return t
}

// roomsAndExcept reads request opts {rooms, except}.
func (m message) roomsAndExcept() (rooms, except []string, ok bool) {
	o, isMap := m["opts"].(map[string]any)
	if !isMap {
		return nil, nil, false
	}
	var err1, err2 error
	rooms, err1 = stringList(o["rooms"])
	except, err2 = stringList(o["except"])
	return rooms, except, err1 == nil && err2 == nil
}

// timeoutOf reads flags.timeout (milliseconds) from request opts.
func (m message) timeoutOf() (time.Duration, bool) {
	o, _ := m["opts"].(map[string]any)
	f, _ := o["flags"].(map[string]any)
	ms, ok := toInt(f["timeout"])
	if !ok || ms <= 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// requestOpts is the JSON {rooms, except} of requests.
type requestOpts struct {
	Rooms  []string `json:"rooms"`
	Except []string `json:"except"`
}

// request is an outgoing JSON request.
type request struct {
	UID       string       `json:"uid"`
	RequestID string       `json:"requestId,omitempty"`
	Type      int          `json:"type"`
	Opts      *requestOpts `json:"opts,omitempty"`
	Rooms     []string     `json:"rooms,omitempty"`
	Close     *bool        `json:"close,omitempty"`
	Data      []any        `json:"data,omitempty"`
}

// broadcastRequest is an outgoing msgpack BROADCAST (with ack) request.
type broadcastRequest struct {
	UID       string     `msgpack:"uid"`
	RequestID string     `msgpack:"requestId"`
	Type      int        `msgpack:"type"`
	Packet    wirePacket `msgpack:"packet"`
	Opts      wireOpts   `msgpack:"opts"`
}
