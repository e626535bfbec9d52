package state

import (
	"testing"
	"time"
)

var timeCases = []time.Time{
	time.Date(2026, 11, 26, 16, 17, 18, 840_000_000, time.UTC),
	time.Date(2026, 11, 26, 16, 17, 18, 840_999_999, time.UTC), // cut, not rounded
	time.Date(1, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
	time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
	time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(-1, 6, 15, 12, 0, 0, 0, time.UTC),
	time.Date(2024, 2, 29, 5, 6, 7, 8_000_000, time.FixedZone("x", 5*3600+1800)),
	time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
}

// TestTimeStringMatchesFormat: the hand-written TimeLayout formatter writes
// what time.Format does, in and out of the four-digit years.
func TestTimeStringMatchesFormat(t *testing.T) {
	for _, tc := range timeCases {
		v := Time{tc}
		if got, want := v.String(), tc.UTC().Format(TimeLayout); got != want {
			t.Errorf("%v: %q, Format %q", tc, got, want)
		}
		b, _ := v.MarshalJSON()
		if want := `"` + tc.UTC().Format(TimeLayout) + `"`; string(b) != want {
			t.Errorf("%v: JSON %s, want %s", tc, b, want)
		}
	}
}

func FuzzTimeString(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1795709838), int64(840_999_999))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tc := time.Unix(sec, nsec%1e9)
		if got, want := (Time{tc}).String(), tc.UTC().Format(TimeLayout); got != want {
			t.Fatalf("%v: %q, Format %q", tc, got, want)
		}
	})
}

func BenchmarkTimeString(b *testing.B) {
	v := Time{timeCases[0]}
	b.Run("ours", func(b *testing.B) {
		for b.Loop() {
			_ = v.String()
		}
	})
	b.Run("Format", func(b *testing.B) {
		for b.Loop() {
			_ = v.UTC().Format(TimeLayout)
		}
	})
}
