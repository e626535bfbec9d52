package wstransport

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// The transport's emitter behaves as the library's: each script runs on
// both, and what the listeners saw and what the emitter reports must match.
func TestEmitterMatchesTheLibrary(t *testing.T) {
	type step func(e types.EventEmitter, log func(string), fns []types.EventListener)
	scripts := map[string][]step{
		"order and arguments": {
			func(e types.EventEmitter, _ func(string), fns []types.EventListener) {
				_ = e.On("a", fns[0], fns[1])
				_ = e.On("b", fns[2])
				_ = e.On("a", fns[3])
				e.Emit("a", 1, "x")
				e.Emit("b")
				e.Emit("c")
			},
		},
		"once runs once": {
			func(e types.EventEmitter, _ func(string), fns []types.EventListener) {
				_ = e.Once("a", fns[0])
				_ = e.On("a", fns[1])
				e.Emit("a", 1)
				e.Emit("a", 2)
			},
		},
		"remove the first match": {
			func(e types.EventEmitter, log func(string), fns []types.EventListener) {
				_ = e.On("a", fns[0], fns[1], fns[0])
				log(fmt.Sprint(e.RemoveListener("a", fns[0])))
				log(fmt.Sprint(e.RemoveListener("b", fns[1])))
				e.Emit("a", 1)
				log(fmt.Sprint(e.ListenerCount("a")))
			},
		},
		"remove a once listener before it runs": {
			func(e types.EventEmitter, log func(string), fns []types.EventListener) {
				_ = e.Once("close", fns[0])
				log(fmt.Sprint(e.RemoveListener("close", fns[0])))
				e.Emit("close")
				log(fmt.Sprint(e.ListenerCount("close")))
			},
		},
		"listeners added while emitting wait for the next emit": {
			func(e types.EventEmitter, _ func(string), fns []types.EventListener) {
				_ = e.Once("a", func(...any) { _ = e.On("a", fns[1]) })
				e.Emit("a", 1)
				e.Emit("a", 2)
			},
		},
		"a panicking listener does not stop the others": {
			func(e types.EventEmitter, _ func(string), fns []types.EventListener) {
				_ = e.On("a", func(...any) { panic("listener") }, fns[0])
				e.Emit("a", 1)
			},
		},
		"remove all and clear": {
			func(e types.EventEmitter, log func(string), fns []types.EventListener) {
				_ = e.On("a", fns[0])
				_ = e.On("b", fns[1])
				_ = e.On("c", fns[2])
				log(fmt.Sprint(e.Len(), e.ListenerCount("b")))
				log(fmt.Sprint(e.RemoveAllListeners("b"), e.RemoveAllListeners("z")))
				e.Emit("b", 1)
				names := e.EventNames()
				slices.Sort(names)
				log(fmt.Sprint(names, len(e.Listeners("a"))))
				e.Clear()
				e.Emit("a", 2)
				log(fmt.Sprint(e.ListenerCount("a")))
			},
		},
	}
	run := func(e types.EventEmitter, script []step) []string {
		var got []string
		log := func(s string) { got = append(got, s) }
		fns := make([]types.EventListener, 4)
		for i := range fns {
			fns[i] = func(args ...any) { log(fmt.Sprint("fn", i, args)) }
		}
		// Distinct functions, as the library tells listeners apart by code.
		fns[0] = func(args ...any) { log(fmt.Sprint("fn0", args)) }
		fns[1] = func(args ...any) { log(fmt.Sprint("fn1", args)) }
		fns[2] = func(args ...any) { log(fmt.Sprint("fn2", args)) }
		fns[3] = func(args ...any) { log(fmt.Sprint("fn3", args)) }
		for _, s := range script {
			s(e, log, fns)
		}
		return got
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			want := run(types.NewEventEmitter(), script)
			got := run(&Transport{}, script)
			if !slices.Equal(got, want) {
				t.Fatalf("transport's emitter: %q\nlibrary's emitter: %q", got, want)
			}
		})
	}
}

// A one-time listener runs once however many goroutines emit at once.
func TestEmitterOnceUnderConcurrentEmits(t *testing.T) {
	var tr Transport
	var runs atomic.Int64
	_ = tr.Once("close", func(...any) { runs.Add(1) })
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { tr.Emit("close") })
	}
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("once listener ran %d times", n)
	}
	if n := tr.ListenerCount("close"); n != 0 {
		t.Fatalf("%d close listeners left", n)
	}
}

// The engine's listeners on a connection's transport are in the transport's
// emitter: the base transport's stays empty, and its events still reach
// the engine (the session works, and closes when the connection does).
func TestEngineListensOnTheTransportsEmitter(t *testing.T) {
	s := startServer(t, ours(), nil)
	c := dialMany(t, s, 1, "EIO=4")[0]
	tr := s.transportOf(c.sid)
	if n := tr.Transport.Len(); n != 0 {
		t.Fatalf("the base transport's emitter has listeners for %d events", n)
	}
	for _, evt := range []types.EventName{"packet", "drain", "error", "close"} {
		if tr.ListenerCount(evt) == 0 {
			t.Fatalf("no %q listener on the transport", evt)
		}
	}
	sock := s.waitSocket(c.sid)
	_ = sock.On("echo", func(args ...any) { sock.Emit("echoed", args...) })
	c.write(`42["echo",1]`)
	c.expect(1, `42["echoed",1]`)
	_ = c.c.Close()
	if r := s.reason(5 * time.Second); r != "transport close" {
		t.Fatalf("disconnect reason %q, want transport close", r)
	}
}

// TestDecodeTextMatchesParser: a text message's packet is the protocol 4
// parser's, type and data; what decodeText leaves to the parser (protocol
// 3, base64 binary, unknown types, nothing) is exactly what it must.
func TestDecodeTextMatchesParser(t *testing.T) {
	for _, s := range []string{"4" + `2["call:notify",{"call_id":"c"}]`, "2", "3", "2probe", "5", "6", "1", "0", "4", "4é\u2028",
		"bAQID", "9x", "x", ""} {
		checkDecodeText(t, s)
	}
	if _, ok := decodeText(3, []byte("4x")); ok {
		t.Error("protocol 3 taken")
	}
}

func checkDecodeText(t testing.TB, s string) {
	t.Helper()
	got, ok := decodeText(4, []byte(s))
	_, known := parser.PACKET_TYPES_REVERSE[byteAt(s)]
	if ok != (s != "" && known) {
		t.Fatalf("%q: taken %v", s, ok)
	}
	if !ok {
		return
	}
	want, err := parser.Parserv4().DecodePacket(types.NewStringBufferString(s))
	if err != nil {
		t.Fatalf("%q: taken, but the parser refuses it: %v", s, err)
	}
	g, gok := got.Data.(*types.StringBuffer)
	w, wok := want.Data.(*types.StringBuffer)
	if !gok || !wok {
		t.Fatalf("%q: data is a %T, the parser's a %T", s, got.Data, want.Data)
	}
	if got.Type != want.Type || g.String() != w.String() {
		t.Fatalf("%q: %v %q, the parser's %v %q", s, got.Type, g.String(), want.Type, w.String())
	}
}

func byteAt(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}

func FuzzDecodeText(f *testing.F) {
	f.Add("4" + `2["ev",{}]`)
	f.Add("b" + "AQID")
	f.Fuzz(func(t *testing.T, s string) { checkDecodeText(t, s) })
}
