package test

import (
	"context"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/testclient"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/state/memory"
)

const testSecret = "e2e-test-secret-0123456789abcdef"

// fakeClock is the injectable clock: tests move it instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one in-process node on the embedded default (memory store) with a
// fake clock, served on 127.0.0.1.
type env struct {
	t     *testing.T
	URL   string
	Clock *fakeClock
	Node  *node.Node
}

type envOption func(*node.Options)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	scfg := service.DefaultConfig()
	scfg.NodeID = "e2e-node"
	gcfg := gateway.DefaultConfig()
	o := node.Options{
		Service:  scfg,
		Gateway:  gcfg,
		Store:    memory.New(clock.Now),
		Verifier: v,
		Clock:    clock.Now,
		Logger:   testLogger(),
		// Shutdown spreads the closing of the sockets still open over half
		// of this; a test's leftovers need not take the production 10 s.
		DrainTimeout: 2 * time.Second,
	}
	for _, f := range opts {
		f(&o)
	}
	n, err := node.New(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.Serve(l) }()
	e := &env{t: t, URL: "http://" + l.Addr().String(), Clock: clock, Node: n}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return e
}

func testLogger() zerolog.Logger {
	if os.Getenv("SWITCHBOARD_TEST_LOG") == "1" {
		return zerolog.New(os.Stderr).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}

// token mints a member token signed with the test secret.
func token(t testing.TB, user, device, name string) string {
	t.Helper()
	tok, err := auth.Mint(auth.SigningKey{Secret: testSecret}, auth.Claims{UserID: user, DeviceID: device, Name: name}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// member connects a member device over websocket.
func (e *env) member(user, device string) *testclient.Client {
	e.t.Helper()
	return dialMember(e.t, e.URL, user, device, testclient.WebSocket)
}

func dialMember(t *testing.T, url, user, device string, tr testclient.Transport) *testclient.Client {
	t.Helper()
	c, err := testclient.Dial(url, testclient.Options{Auth: map[string]any{"token": token(t, user, device, "Name of "+user)}, Transport: tr})
	if err != nil {
		t.Fatalf("connect %s/%s: %v", user, device, err)
	}
	t.Cleanup(c.Close)
	return c
}

// guest connects a guest socket.
func (e *env) guest(sessionID, sessionToken string) *testclient.Client {
	e.t.Helper()
	c, err := testclient.Dial(e.URL, testclient.Options{Namespace: "/external",
		Auth: map[string]any{"session_id": sessionID, "session_token": sessionToken}})
	if err != nil {
		e.t.Fatalf("connect guest: %v", err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// runJobs advances the clock and runs every job due.
func (e *env) runJobs(d time.Duration) {
	e.t.Helper()
	e.Clock.Advance(d)
	for i := 0; i < 20; i++ {
		n, err := e.Node.Service.RunDue(context.Background(), 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// emit emits and fails the test when no ack arrives.
func emit(t *testing.T, c *testclient.Client, event string, payload any) testclient.Ack {
	t.Helper()
	a, err := c.Emit(event, payload)
	if err != nil {
		t.Fatalf("%v (%s)", err, c.State())
	}
	return a
}

// mustOK asserts a successful ack.
func mustOK(t *testing.T, a testclient.Ack) testclient.Ack {
	t.Helper()
	if !a.OK() {
		t.Fatalf("ack not successful: %v", a)
	}
	return a
}

// mustCode asserts a refusal with code.
func mustCode(t *testing.T, a testclient.Ack, code string) {
	t.Helper()
	if a.OK() || a.Code() != code {
		t.Fatalf("want refusal %q, got %v", code, a)
	}
	if msg, _ := a["error"].(string); msg == "" {
		t.Fatalf("refusal without a human error sentence: %v", a)
	}
}

const (
	waitFor = 3 * time.Second
	quiet   = 300 * time.Millisecond
)

// got waits for one event matching pred.
func got(t *testing.T, c *testclient.Client, name string, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	ev, ok := c.Wait(name, pred, waitFor)
	if !ok {
		t.Fatalf("%s did not receive %s; got %v (%s)", c.ID(), name, names(c.Events()), c.State())
	}
	return ev.Data
}

// exactlyOnce waits for the event, lets stray duplicates arrive, and
// asserts one delivery.
func exactlyOnce(t *testing.T, c *testclient.Client, name string, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	d := got(t, c, name, pred)
	time.Sleep(quiet)
	if n := c.Count(name, pred); n != 1 {
		t.Fatalf("%s received %s %d times", c.ID(), name, n)
	}
	return d
}

// never asserts that no event named name matching pred arrived (after a
// quiet period).
func never(t *testing.T, c *testclient.Client, name string, pred func(map[string]any) bool) {
	t.Helper()
	time.Sleep(quiet)
	if n := c.Count(name, pred); n != 0 {
		t.Fatalf("%s received %s %d times, want none", c.ID(), name, n)
	}
}

func names(evs []testclient.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name
	}
	return out
}

type nodeOptions = node.Options
