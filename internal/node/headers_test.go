package node

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The library sees a copy of the request without the headers nobody
// reads; the request the HTTP server and Echo hold is left as it was.
func TestDropUnusedHeaders(t *testing.T) {
	var seen *http.Request
	h := dropUnusedHeaders(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r }))
	r := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=websocket", nil)
	for name, value := range map[string]string{
		"Cookie": "session=secret", "Authorization": "Bearer x", "Accept-Language": "en",
		"Sec-Fetch-Mode": "websocket", "Sec-Ch-Ua-Platform": `"Linux"`,
		"User-Agent": "Mozilla/5.0", "Origin": "https://app.example", "Upgrade": "websocket",
		"Sec-Websocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "X-Forwarded-For": "10.0.0.1",
	} {
		r.Header.Set(name, value)
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen == r {
		t.Fatal("the library got the server's request, not its own copy")
	}
	tests := []struct {
		header string
		kept   bool
	}{
		{"Cookie", false}, {"Authorization", false}, {"Accept-Language", false},
		{"Sec-Fetch-Mode", false}, {"Sec-Ch-Ua-Platform", false},
		{"User-Agent", true}, {"Origin", true}, {"Upgrade", true}, {"Sec-Websocket-Key", true}, {"X-Forwarded-For", true},
	}
	for _, tt := range tests {
		if got := seen.Header.Get(tt.header) != ""; got != tt.kept {
			t.Errorf("%s: kept %v, want %v", tt.header, got, tt.kept)
		}
		if r.Header.Get(tt.header) == "" {
			t.Errorf("%s removed from the server's request", tt.header)
		}
	}
	if seen.URL.RawQuery != r.URL.RawQuery || seen.Context() != r.Context() {
		t.Error("the copy lost the URL or the context")
	}
}
