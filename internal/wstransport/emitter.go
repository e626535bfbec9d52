package wstransport

import (
	"bytes"
	"reflect"
	"slices"
	"sync"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/parsers/engine/v3/parser"
	"github.com/zishang520/socket.io/servers/engine/v3/errors"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// The transport is its own event emitter (types.EventEmitter), in place of
// the base transport's: the engine socket, the engine server and the
// reader's start register about eight listeners on every transport
// ("packet", "drain", "error", "close", "ready", "headers"), which the
// library's emitter keeps in a concurrent map of concurrent slices, with an
// entry, a boxed value and a slice header per event name and a wrapper and
// a sync.Once per one-time listener: ~1.2 KiB per connection for the life
// of the connection. The transport keeps them in one slice (emitter).
//
// It behaves as the library's emitter: listeners run in the order they were
// added, on the goroutine that emits, each with a recover so that a
// panicking listener does not take the emitter down; an Emit calls the
// listeners registered when it started; a one-time listener is removed
// before it runs, so it runs once however many emit at the same time;
// RemoveListener removes the first listener of the event whose function is
// the given one (the same code pointer, as the library compares them).

// emitter holds a transport's listeners.
type emitter struct {
	mu        sync.Mutex
	listeners []listener
}

// listener is one registered listener.
type listener struct {
	event types.EventName
	fn    types.EventListener
	once  bool
}

// listenersCap is the room made for a transport's listeners at the first
// one: what the engine and the reader register, with no regrowth.
const listenersCap = 8

// On adds listeners for evt.
func (t *Transport) On(evt types.EventName, fns ...types.EventListener) error {
	t.events.add(evt, fns, false)
	return nil
}

// AddListener is On.
func (t *Transport) AddListener(evt types.EventName, fns ...types.EventListener) error {
	return t.On(evt, fns...)
}

// Once adds listeners for evt that run at most once, at its next Emit.
func (t *Transport) Once(evt types.EventName, fns ...types.EventListener) error {
	t.events.add(evt, fns, true)
	return nil
}

func (e *emitter) add(evt types.EventName, fns []types.EventListener, once bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.listeners == nil {
		e.listeners = make([]listener, 0, listenersCap)
	}
	for _, fn := range fns {
		if fn != nil {
			e.listeners = append(e.listeners, listener{event: evt, fn: fn, once: once})
		}
	}
}

// Emit calls the listeners of evt with args.
func (t *Transport) Emit(evt types.EventName, args ...any) {
	e := &t.events
	var buf [4]types.EventListener
	fns := buf[:0]
	e.mu.Lock()
	kept := e.listeners[:0]
	for _, l := range e.listeners {
		if l.event == evt {
			fns = append(fns, l.fn)
			if l.once {
				continue
			}
		}
		kept = append(kept, l)
	}
	clear(e.listeners[len(kept):])
	e.listeners = kept
	e.mu.Unlock()
	for _, fn := range fns {
		call(fn, args)
	}
}

// call runs fn, dropping a panic as the library's emitter does.
func call(fn types.EventListener, args []any) {
	defer func() { _ = recover() }()
	fn(args...)
}

// EventNames returns the events that have listeners, each once.
func (t *Transport) EventNames() []types.EventName {
	e := &t.events
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []types.EventName
	for _, l := range e.listeners {
		if !slices.Contains(names, l.event) {
			names = append(names, l.event)
		}
	}
	return names
}

// ListenerCount returns the number of listeners of evt.
func (t *Transport) ListenerCount(evt types.EventName) int {
	return len(t.Listeners(evt))
}

// Listeners returns the listeners of evt, in order.
func (t *Transport) Listeners(evt types.EventName) []types.EventListener {
	e := &t.events
	e.mu.Lock()
	defer e.mu.Unlock()
	var fns []types.EventListener
	for _, l := range e.listeners {
		if l.event == evt {
			fns = append(fns, l.fn)
		}
	}
	return fns
}

// RemoveListener removes the first listener of evt whose function is fn
// and reports whether there was one.
func (t *Transport) RemoveListener(evt types.EventName, fn types.EventListener) bool {
	if fn == nil {
		return false
	}
	ptr := reflect.ValueOf(fn).Pointer()
	e := &t.events
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.listeners, func(l listener) bool {
		return l.event == evt && reflect.ValueOf(l.fn).Pointer() == ptr
	})
	if i < 0 {
		return false
	}
	e.listeners = slices.Delete(e.listeners, i, i+1)
	return true
}

// RemoveAllListeners removes the listeners of evt and reports whether it
// had any.
func (t *Transport) RemoveAllListeners(evt types.EventName) bool {
	e := &t.events
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.listeners)
	e.listeners = slices.DeleteFunc(e.listeners, func(l listener) bool { return l.event == evt })
	return len(e.listeners) < n
}

// Clear removes every listener.
func (t *Transport) Clear() {
	e := &t.events
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listeners = nil
}

// Len returns the number of events that have listeners.
func (t *Transport) Len() int { return len(t.EventNames()) }

// The base transport's methods that emit do it on its own emitter; the
// transport's versions emit on the transport's.

// OnError reports a transport error to the "error" listeners (the engine
// socket's), and drops it when there are none, as the base transport does.
func (t *Transport) OnError(msg string, desc error) {
	if t.ListenerCount("error") > 0 {
		t.Emit("error", errors.NewTransportError(msg, desc))
	}
}

// OnPacket hands a packet the client sent to the "packet" listeners.
func (t *Transport) OnPacket(p *packet.Packet) { t.Emit("packet", p) }

// decodeText makes the packet of a text message as the Engine.IO protocol
// 4 parser does (a type digit, then the data), without the parser's copy
// through a buffer that grows from nothing (~1.5 KiB allocated for a
// 150-byte event). ok is false for what it leaves to the parser: protocol
// 3, base64 binary ('b'), an unknown type, an empty message.
func decodeText(protocol int, payload []byte) (*packet.Packet, bool) {
	if protocol != 4 || len(payload) == 0 {
		return nil, false
	}
	typ, ok := parser.PACKET_TYPES_REVERSE[payload[0]]
	if !ok {
		return nil, false
	}
	return &packet.Packet{Type: typ, Data: types.NewStringBuffer(bytes.Clone(payload[1:]))}, true
}

// OnData decodes a message the client sent and hands its packet on.
func (t *Transport) OnData(data types.BufferInterface) {
	p, _ := t.Parser().DecodePacket(data)
	t.OnPacket(p)
}
