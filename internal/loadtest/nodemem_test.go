package loadtest

import (
	"strings"
	"testing"
)

func TestParseNodeMemory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		page    string
		want    NodeMemory
		wantErr bool
	}{
		{
			name: "node with sockets in two namespaces",
			page: `# HELP go_gc_heap_live_bytes Heap memory occupied by live objects that were marked by the previous GC.
# TYPE go_gc_heap_live_bytes gauge
go_gc_heap_live_bytes 2.097152e+07
# TYPE go_goroutines gauge
go_goroutines 1015
# TYPE switchboard_connections gauge
switchboard_connections{namespace="/"} 1000
switchboard_connections{namespace="/guest"} 24
`,
			want: NodeMemory{Connections: 1024, Goroutines: 1015, LiveHeapBytes: 20 << 20, LiveHeapPerConnKiB: 20},
		},
		{
			name: "no sockets",
			page: "# TYPE go_gc_heap_live_bytes gauge\ngo_gc_heap_live_bytes 1024\ngo_goroutines 12\n",
			want: NodeMemory{Goroutines: 12, LiveHeapBytes: 1024},
		},
		{name: "node without the live heap series", page: "go_goroutines 12\n", wantErr: true},
		{name: "not an exposition", page: "<html>login</html>", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNodeMemory(strings.NewReader(tc.page))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
