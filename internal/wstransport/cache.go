package wstransport

import (
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Default bounds of a Builder's frame cache.
const (
	// defaultCacheEntries is how many distinct broadcast frames the cache
	// keeps. Every recipient of one broadcast asks for the same frame within
	// a few milliseconds of the others, so a small window is enough: only a
	// writer that lags more than this many broadcasts behind misses, and a
	// miss only costs what the library pays on every write.
	defaultCacheEntries = 256
	// defaultCacheBytes bounds the payload bytes the cache keeps alive. Each
	// entry holds the frame buffer and the frame built from it, so the
	// memory held is about twice this figure.
	defaultCacheBytes = 8 << 20
)

// frameCache maps a pre-encoded broadcast frame (the buffer the Socket.IO
// adapter encodes once per broadcast and hands, as the same object, to every
// recipient in packet.Options.WsPreEncodedFrame) to the complete WebSocket
// frame built from it (header and a copy of the payload), so that the frame
// is made once per broadcast instead of once per recipient, and its bytes
// are written to every connection.
//
// The key is the identity of the buffer. Each entry keeps a strong reference
// to its buffer, so the buffer cannot be collected and its address reused by
// another frame while the entry exists. An entry also remembers the slice the
// buffer returned when the message was built; if the buffer no longer
// returns the same slice (someone wrote to it), the entry is rebuilt.
//
// The cache is bounded in entries and in payload bytes and evicts in FIFO
// order (a ring). Concurrent requests for a frame that is being built wait
// for that build instead of building their own. A frame that is not cached
// (evicted, or of a buffer type the cache does not key) is simply built
// again: a lookup is never wrong, at worst as slow as no cache.
//
// A nil *frameCache is valid and builds a new message on every call.
type frameCache struct {
	mu       sync.Mutex
	entries  map[types.BufferInterface]*frameEntry
	ring     []*frameEntry // FIFO order; nil slots are free
	next     int           // the oldest slot, overwritten by the next insert
	bytes    int           // payload bytes of the cached entries
	maxBytes int

	// built counts the frames built (cached or not); tests and benchmarks
	// read it to check one build per broadcast.
	built atomic.Uint64
}

// frameEntry is one cached frame. wire is set once, by the first caller,
// under once; the others wait on once.
type frameEntry struct {
	frame types.BufferInterface // strong reference: pins the key's address
	data  []byte                // frame.Bytes() when the entry was made
	slot  int                   // index in ring

	once sync.Once
	wire []byte // the WebSocket frame: header and payload
}

// newFrameCache returns a cache of at most entries frames and about
// maxBytes payload bytes (a single frame larger than maxBytes is still
// cached, alone).
func newFrameCache(entries, maxBytes int) *frameCache {
	if entries < 1 {
		entries = 1
	}
	return &frameCache{
		entries:  make(map[types.BufferInterface]*frameEntry, entries),
		ring:     make([]*frameEntry, entries),
		maxBytes: maxBytes,
	}
}

// frame returns the WebSocket frame of a pre-encoded broadcast buffer,
// building it on a miss. It is safe for concurrent use. The returned bytes
// are shared by every writer of the broadcast and must not be modified.
func (c *frameCache) frame(frame types.BufferInterface) []byte {
	data := frame.Bytes()
	if c == nil {
		return c.build(frame, data)
	}
	switch frame.(type) {
	case *types.StringBuffer, *types.BytesBuffer:
		// Pointer types: comparable, so usable as identity keys.
	default:
		return c.build(frame, data)
	}

	c.mu.Lock()
	e, ok := c.entries[frame]
	if ok && !sameSlice(e.data, data) {
		c.remove(e)
		ok = false
	}
	if !ok {
		e = &frameEntry{frame: frame, data: data}
		c.insert(e)
	}
	c.mu.Unlock()

	e.once.Do(func() { e.wire = c.build(frame, data) })
	return e.wire
}

// build makes the frame of data (a copy is taken) and counts it.
func (c *frameCache) build(frame types.BufferInterface, data []byte) []byte {
	if c != nil {
		c.built.Add(1)
	}
	return appendFrame(make([]byte, 0, len(data)+10), opcodeOf(frame), data)
}

// builds reports how many frames c has built.
func (c *frameCache) builds() uint64 {
	if c == nil {
		return 0
	}
	return c.built.Load()
}

// insert adds e, evicting the oldest entries until there is a free slot and
// the byte budget allows e (or the cache is empty). Caller holds c.mu.
func (c *frameCache) insert(e *frameEntry) {
	for i := 0; i < len(c.ring); i++ {
		old := c.ring[c.next]
		if old == nil && c.bytes+len(e.data) <= c.maxBytes {
			break
		}
		if old != nil {
			c.remove(old)
		}
		if c.bytes+len(e.data) <= c.maxBytes {
			break
		}
		c.next = (c.next + 1) % len(c.ring)
	}
	// After a full turn the ring is empty or c.next is free.
	if c.ring[c.next] != nil {
		c.remove(c.ring[c.next])
	}
	e.slot = c.next
	c.ring[c.next] = e
	c.entries[e.frame] = e
	c.bytes += len(e.data)
	c.next = (c.next + 1) % len(c.ring)
}

// remove drops e from the ring and the map. Caller holds c.mu.
func (c *frameCache) remove(e *frameEntry) {
	if c.ring[e.slot] != e {
		return
	}
	c.ring[e.slot] = nil
	if c.entries[e.frame] == e {
		delete(c.entries, e.frame)
	}
	c.bytes -= len(e.data)
}

// len reports the number of cached frames (tests).
func (c *frameCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// sameSlice reports whether a and b are the same slice of the same array.
func sameSlice(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}
