package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// browserHeaders are what a browser sends with a Socket.IO handshake.
func browserHeaders() http.Header {
	h := http.Header{}
	h.Set("Cookie", "session="+strings.Repeat("c", 2048))
	h.Set("Authorization", "Bearer not-for-the-gateway")
	h.Set("Accept-Language", "en-GB,en;q=0.9")
	h.Set("Sec-Ch-Ua-Platform", `"Linux"`)
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	h.Set("Origin", "https://app.example")
	return h
}

// Once a socket has connected the node keeps nothing of its handshake: not
// the token of its CONNECT packet, nor the upgrade request's headers and
// query string (the library would hold copies of them for the life of the
// connection). Both transports. Which headers the library sees before that
// is internal/node's TestDropUnusedHeaders.
func TestConnectedSocketKeepsNoHandshake(t *testing.T) {
	e := newEnv(t)
	tok := token(t, "alice", "d1", "Alice")
	connectors := map[string]func(){
		"websocket": func() {
			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.URL, "http")+"/socket.io/?EIO=4&transport=websocket", browserHeaders())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ws.Close() })
			_, _, _ = ws.ReadMessage() // open
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+tok+`"}`))
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, ack, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(ack), "40{") {
				t.Fatalf("connect answered %q %v", ack, err)
			}
		},
		"polling": func() {
			do := func(method, url, body string) string {
				req, _ := http.NewRequest(method, url, strings.NewReader(body))
				req.Header = browserHeaders()
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return string(b)
			}
			base := e.URL + "/socket.io/?EIO=4&transport=polling"
			open := do("GET", base, "")
			i := strings.Index(open, `"sid":"`)
			if i < 0 {
				t.Fatalf("open %q", open)
			}
			sid := open[i+7:]
			sid = sid[:strings.IndexByte(sid, '"')]
			do("POST", base+"&sid="+sid, `40{"token":"`+tok+`"}`)
			if ack := do("GET", base+"&sid="+sid, ""); !strings.HasPrefix(ack, "40{") {
				t.Fatalf("connect answered %q", ack)
			}
		},
	}
	for name, connect := range connectors {
		t.Run(name, func(t *testing.T) {
			before := map[socket.SocketId]bool{}
			e.Node.IO.Sockets().Sockets().Range(func(id socket.SocketId, _ *socket.Socket) bool { before[id] = true; return true })
			connect()
			var sock *socket.Socket
			e.Node.IO.Sockets().Sockets().Range(func(id socket.SocketId, s *socket.Socket) bool {
				if !before[id] {
					sock = s
				}
				return sock == nil
			})
			if sock == nil {
				t.Fatal("no new server socket")
			}
			hs := sock.Handshake()
			if len(hs.Headers) != 0 || len(hs.Query) != 0 {
				t.Errorf("handshake kept %d headers and %d query parameters", len(hs.Headers), len(hs.Query))
			}
			req := sock.Request()
			if n := len(req.Request().Header); n != 0 {
				t.Errorf("request kept %d headers", n)
			}
			if n, q := req.Headers().Count(), req.Query().Count(); n != 0 || q != 0 {
				t.Errorf("the library's views of the request kept %d headers and %d query parameters", n, q)
			}
			if auth := sock.Handshake().Auth; auth != nil {
				t.Errorf("handshake auth kept: %d keys", len(auth))
			}
		})
	}
}
