package loadtest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeNode is a hand-scripted Engine.IO/Socket.IO server: each connection
// runs script with a helper that sends raw frames and expects raw frames,
// so the test pins the client's bytes on the wire.
type fakeNode struct {
	t      *testing.T
	srv    *httptest.Server
	script func(w *wire)
}

type wire struct {
	t  *testing.T
	ws *websocket.Conn
}

func (w *wire) send(frame string) {
	w.t.Helper()
	if err := w.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		w.t.Errorf("send %s: %v", frame, err)
	}
}

func (w *wire) expect(frame string) {
	w.t.Helper()
	_ = w.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := w.ws.ReadMessage()
	if err != nil {
		w.t.Errorf("expecting %s: %v", frame, err)
		return
	}
	if typ != websocket.TextMessage || string(b) != frame {
		w.t.Errorf("client sent %q (type %d), want %q", b, typ, frame)
	}
}

func newFakeNode(t *testing.T, script func(w *wire)) *fakeNode {
	f := &fakeNode{t: t, script: script}
	up := websocket.Upgrader{}
	var wg sync.WaitGroup
	f.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/socket.io/" || r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" {
			t.Errorf("handshake request %s", r.URL)
			http.Error(rw, "bad", http.StatusBadRequest)
			return
		}
		ws, err := up.Upgrade(rw, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer ws.Close()
		f.script(&wire{t: t, ws: ws})
	}))
	t.Cleanup(func() { f.srv.Close(); wg.Wait() })
	return f
}

const openFrame = `0{"sid":"eio-1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`

func TestClientAgainstHandWrittenFrames(t *testing.T) {
	type got struct {
		name, data string
	}
	events := make(chan got, 4)
	node := newFakeNode(t, func(w *wire) {
		w.send(openFrame)
		w.expect(`40{"token":"good"}`)
		w.send(`2`) // a ping before the connect answer is answered too
		w.expect(`3`)
		w.send(`40{"sid":"sio-1"}`)
		w.send(`2`)
		w.expect(`3`)
		w.send(`42["call:incoming",{"call":{"meeting_id":"call_1"},"caller":{"user_id":"a"}}]`)
		w.expect(`420["call:create",{"participants":["b"]}]`)
		w.send(`430[{"success":true,"call":{"meeting_id":"call_1"}}]`)
		w.expect(`421["call:notify",{"call_id":"call_1"}]`)
		w.send(`431[{"success":false,"error":"slow down","code":"rate_limited"}]`)
		w.expect(`42["presence:heartbeat"]`)
		w.expect(`422["meeting:leave",{"meeting_id":"call_1"}]`) // never answered: times out
		w.expect(`423["meeting:leave",{"meeting_id":"call_1"}]`) // pending when the server disconnects
		w.send(`41`)
	})
	c, err := Dial(context.Background(), DialOptions{URL: node.srv.URL, Auth: []byte(`{"token":"good"}`), Tag: 7,
		Handler: func(c *Client, ev Event) {
			if c.Tag() != 7 {
				t.Errorf("tag %d", c.Tag())
			}
			events <- got{string(ev.Name), string(ev.Data)}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Connected.Before(c.SentConnect) || c.SentConnect.Before(c.Started) {
		t.Fatalf("handshake times out of order: %v %v %v", c.Started, c.SentConnect, c.Connected)
	}
	select {
	case e := <-events:
		if e.name != "call:incoming" || e.data != `{"call":{"meeting_id":"call_1"},"caller":{"user_id":"a"}}` {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	a, err := c.EmitAck("call:create", []byte(`{"participants":["b"]}`), 5*time.Second)
	if err != nil || !a.Success || string(a.Raw) != `{"success":true,"call":{"meeting_id":"call_1"}}` {
		t.Fatalf("ack %+v %s, %v", a, a.Raw, err)
	}
	a, err = c.EmitAck("call:notify", []byte(`{"call_id":"call_1"}`), 5*time.Second)
	if err != nil || a.Success || a.Code != "rate_limited" || a.Error != "slow down" {
		t.Fatalf("refusal %+v, %v", a, err)
	}
	if err := c.Emit("presence:heartbeat", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EmitAck("meeting:leave", []byte(`{"meeting_id":"call_1"}`), 50*time.Millisecond); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("unanswered ack: %v", err)
	}
	if _, err := c.EmitAck("meeting:leave", []byte(`{"meeting_id":"call_1"}`), 5*time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("ack pending at disconnect: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client did not stop after the server's disconnect")
	}
	if c.Err() == nil || closeReason(c.Err()) != "server socket.io disconnect" {
		t.Fatalf("reason for the stop: %v", c.Err())
	}
	if d, ok := c.PingBeforeStop(); !ok || d < 0 || d > 5*time.Second {
		t.Fatalf("ping before stop: %v, %v", d, ok)
	}
	if _, err := c.EmitAck("x", nil, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("emit after close: %v", err)
	}
	if c.Received() < 5 {
		t.Fatalf("received %d frames", c.Received())
	}
}

func TestClientConnectError(t *testing.T) {
	node := newFakeNode(t, func(w *wire) {
		w.send(openFrame)
		w.expect(`40{"token":"bad"}`)
		w.send(`44{"message":"invalid or expired token","data":{"code":"unauthorized","message":"invalid or expired token"}}`)
	})
	_, err := Dial(context.Background(), DialOptions{URL: node.srv.URL, Auth: []byte(`{"token":"bad"}`)})
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Code != "unauthorized" || ce.Message != "invalid or expired token" {
		t.Fatalf("got %v", err)
	}
	if dialCode(err) != "connect: unauthorized" {
		t.Fatalf("dial code %q", dialCode(err))
	}
}

func TestClientHandshakeTimeout(t *testing.T) {
	node := newFakeNode(t, func(w *wire) {
		w.send(openFrame)
		w.expect(`40{"token":"t"}`)
		time.Sleep(300 * time.Millisecond) // never answers the connect
	})
	start := time.Now()
	_, err := Dial(context.Background(), DialOptions{URL: node.srv.URL, Auth: []byte(`{"token":"t"}`), Timeout: 100 * time.Millisecond})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}

func TestClientClose(t *testing.T) {
	done := make(chan struct{})
	node := newFakeNode(t, func(w *wire) {
		defer close(done)
		w.send(openFrame)
		w.expect(`40{"token":"t"}`)
		w.send(`40{"sid":"s"}`)
		w.expect(`41`) // a clean leave announces itself
	})
	c, err := Dial(context.Background(), DialOptions{URL: node.srv.URL, Auth: []byte(`{"token":"t"}`)})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("reader still running after Close")
	}
	<-done
}
