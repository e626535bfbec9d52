package wstransport

import (
	"net"
	"slices"
	"testing"
)

// TestConsume: what is left of a write after n bytes went out, with no
// empty buffer at its front (a write of nothing would never progress), and
// the written bytes themselves untouched (frames are shared).
func TestConsume(t *testing.T) {
	for _, tc := range []struct {
		name string
		bufs []string
		n    int
		want []string
	}{
		{"nothing written", []string{"ab", "c"}, 0, []string{"ab", "c"}},
		{"part of the first", []string{"ab", "c"}, 1, []string{"b", "c"}},
		{"the first whole", []string{"ab", "c"}, 2, []string{"c"}},
		{"everything", []string{"ab", "c"}, 3, nil},
		{"empty buffers at the front", []string{"", "", "ab"}, 0, []string{"ab"}},
		{"empty buffers after the written ones", []string{"ab", "", "", "c"}, 2, []string{"c"}},
		{"only empty buffers", []string{"", ""}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := make([][]byte, len(tc.bufs))
			bufs := make(net.Buffers, len(tc.bufs))
			for i, s := range tc.bufs {
				shared[i] = []byte(s)
				bufs[i] = shared[i]
			}
			var got []string
			for _, b := range consume(bufs, tc.n) {
				got = append(got, string(b))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("left %q, want %q", got, tc.want)
			}
			for i, s := range tc.bufs {
				if string(shared[i]) != s {
					t.Errorf("buffer %d became %q", i, shared[i])
				}
			}
		})
	}
}
