package adapter

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

const emitterDir = "testdata/emitter"

// needNode returns the node binary, after installing the pinned npm
// packages of testdata/emitter when they are missing (npm ci, bounded).
func needNode(t *testing.T) string {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the @socket.io/redis-emitter interop test")
	}
	if _, err := os.Stat(filepath.Join(emitterDir, "node_modules", "@socket.io", "redis-emitter")); err == nil {
		return nodeBin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = emitterDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", emitterDir, err, out)
	}
	return nodeBin
}

func runNode(t *testing.T, nodeBin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, append([]string{"emit.js"}, args...)...)
	cmd.Dir = emitterDir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node emit.js %v: %v\n%s", args[0], err, stderr)
	}
	return out
}

// TestNodeEmitterInterop: @socket.io/redis-emitter 5.x emits to a user
// room, to a room with an exception, to everyone but one user, with
// binary, to two rooms, and sends join and disconnect requests; the Go clients on two Go
// servers get each emit exactly once.
func TestNodeEmitterInterop(t *testing.T) {
	nodeBin := needNode(t)
	rs := redistest.Start(t)
	rc := rs.Client()
	n0, n1 := startNode(t, testConfig(rc)), startNode(t, testConfig(rc))
	bob1 := connect(t, n0, "bob1", "user:bob")
	bob2 := connect(t, n1, "bob2", "user:bob", "room:x")
	dave := connect(t, n0, "dave", "room:x", "user:dave")
	carol := connect(t, n1, "carol", "user:carol")
	eve := connect(t, n0, "eve")
	frank := connect(t, n1, "frank", "user:frank")
	all := []*client{bob1, bob2, dave, carol, eve}

	runNode(t, nodeBin, "emit", rs.URL())

	checkDelivery(t, append(all, frank),
		expectation{"node-user-bob", []*client{bob1, bob2}},
		expectation{"node-room-except", []*client{bob2}},
		expectation{"node-all", all},
		expectation{"node-binary", []*client{bob1, bob2}},
		expectation{"node-two-rooms", []*client{carol, dave}},
	)
	select {
	case <-frank.disc:
	case <-time.After(5 * time.Second):
		t.Error("disconnectSockets from the emitter did not disconnect frank")
	}
	waitFor(t, 5*time.Second, "carol in room:joined", func() bool {
		ids, ok := n1.io.Of("/", nil).Adapter().Rooms().Load("room:joined")
		return ok && ids.Has(socket.SocketId(carol.id))
	})
	if s := n0.b.Stats(); s.Malformed != 0 {
		t.Errorf("malformed messages: %+v", s)
	}
}

// TestPublishedBytesDecodeLikeNode: what this adapter publishes is the
// array [uid, {type, data, nsp}, {rooms, except, flags}], both for a Go
// msgpack decoder and for notepack.io (the Node adapter's decoder).
func TestPublishedBytesDecodeLikeNode(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	n := startNode(t, testConfig(rc))
	ctx := context.Background()
	sub := rc.Subscribe(ctx, "socket.io#/#user:bob#", "socket.io#/#")
	t.Cleanup(func() { _ = sub.Close() })
	for range 2 {
		if _, err := sub.Receive(ctx); err != nil { // subscription confirmations
			t.Fatal(err)
		}
	}
	if err := n.io.To("user:bob").Except("user:carol").Emit("msg", "tag", map[string]any{"k": []any{1, "two"}}, []byte{0xff, 0}); err != nil {
		t.Fatal(err)
	}
	n.io.Compress(false).Emit("msg", "everyone")

	recv := func() (string, []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return m.Channel, []byte(m.Payload)
	}
	ch, raw := recv()
	if ch != "socket.io#/#user:bob#" {
		t.Fatalf("published on %q", ch)
	}
	var got []any
	if err := msgpack.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != n.b.UID() {
		t.Fatalf("not [uid, packet, opts]: %#v", got)
	}
	packet, _ := got[1].(map[string]any)
	opts, _ := got[2].(map[string]any)
	if packet == nil || opts == nil {
		t.Fatalf("packet or opts is not a map: %#v", got)
	}
	if typ, _ := toInt(normalizeNumber(packet["type"])); typ != 2 || packet["nsp"] != "/" {
		t.Errorf("packet = %#v", packet)
	}
	data, _ := packet["data"].([]any)
	if len(data) != 4 || data[0] != "msg" || data[1] != "tag" || !reflect.DeepEqual(data[3], []byte{0xff, 0}) {
		t.Errorf("data = %#v", data)
	}
	if !reflect.DeepEqual(opts["rooms"], []any{"user:bob"}) || !reflect.DeepEqual(opts["except"], []any{"user:carol"}) {
		t.Errorf("opts = %#v", opts)
	}
	if _, ok := opts["flags"].(map[string]any); !ok {
		t.Errorf("flags = %#v", opts["flags"])
	}
	ch2, raw2 := recv()
	if ch2 != "socket.io#/#" {
		t.Fatalf("broadcast to all published on %q", ch2)
	}

	// The same bytes through notepack.io.
	nodeBin := needNode(t)
	var fromNode []any
	if err := json.Unmarshal(runNode(t, nodeBin, "decode", hex.EncodeToString(raw)), &fromNode); err != nil {
		t.Fatal(err)
	}
	want := []any{
		n.b.UID(),
		map[string]any{"type": 2.0, "nsp": "/", "data": []any{
			"msg", "tag", map[string]any{"k": []any{1.0, "two"}}, map[string]any{"$bin": []any{255.0, 0.0}},
		}},
		map[string]any{"rooms": []any{"user:bob"}, "except": []any{"user:carol"}, "flags": map[string]any{}},
	}
	if !reflect.DeepEqual(fromNode, want) {
		t.Errorf("notepack decodes\n%#v\nwant\n%#v", fromNode, want)
	}
	var all []any
	if err := json.Unmarshal(runNode(t, nodeBin, "decode", hex.EncodeToString(raw2)), &all); err != nil {
		t.Fatal(err)
	}
	if flags := all[2].(map[string]any)["flags"]; !reflect.DeepEqual(flags, map[string]any{"compress": false}) {
		t.Errorf("flags = %#v", flags)
	}
}

// normalizeNumber turns the integer types of a msgpack decode into int64.
func normalizeNumber(v any) any {
	switch v := v.(type) {
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	}
	return v
}
