package statetest

import (
	"encoding/json"
	"testing"
)

// JSONRoundTrip is what decoding v's encoding/json encoding into an any
// gives: the plain form that gateway.plain and state.Meeting.Plain must
// agree with.
func JSONRoundTrip(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
