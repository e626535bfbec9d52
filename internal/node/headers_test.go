package node

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

type ctxKey struct{}

// The library sees a copy of the request without the headers nobody reads,
// and, for a WebSocket upgrade, with a context of its own that ends when
// the handler returns; the request the HTTP server and Echo hold is left as
// it was.
func TestLibraryRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		upgrade string
		ownCtx  bool
	}{
		{"websocket", "websocket", true},
		{"websocket-mixed-case", "WebSocket", true},
		{"polling", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen *http.Request
			var seenCtx context.Context
			h := libraryRequest(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				seen, seenCtx = r, r.Context()
				if err := seenCtx.Err(); err != nil {
					t.Errorf("context ended during the handler: %v", err)
				}
			}))
			r := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=websocket", nil)
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, "server"))
			for name, value := range map[string]string{
				"Cookie": "session=secret", "Authorization": "Bearer x", "Accept-Language": "en",
				"Sec-Fetch-Mode": "websocket", "Sec-Ch-Ua-Platform": `"Linux"`,
				"User-Agent": "Mozilla/5.0", "Origin": "https://app.example",
				"Sec-Websocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "X-Forwarded-For": "10.0.0.1",
			} {
				r.Header.Set(name, value)
			}
			if tc.upgrade != "" {
				r.Header.Set("Upgrade", tc.upgrade)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if seen == r {
				t.Fatal("the library got the server's request, not its own copy")
			}
			for _, tt := range []struct {
				header string
				kept   bool
			}{
				{"Cookie", false}, {"Authorization", false}, {"Accept-Language", false},
				{"Sec-Fetch-Mode", false}, {"Sec-Ch-Ua-Platform", false},
				{"User-Agent", true}, {"Origin", true}, {"Sec-Websocket-Key", true}, {"X-Forwarded-For", true},
			} {
				if got := seen.Header.Get(tt.header) != ""; got != tt.kept {
					t.Errorf("%s: kept %v, want %v", tt.header, got, tt.kept)
				}
				if r.Header.Get(tt.header) == "" {
					t.Errorf("%s removed from the server's request", tt.header)
				}
			}
			if seen.URL.RawQuery != r.URL.RawQuery {
				t.Error("the copy lost the query")
			}
			fromServer := seenCtx.Value(ctxKey{}) != nil
			if fromServer == tc.ownCtx {
				t.Errorf("context derived from the server's: %v, want %v", fromServer, !tc.ownCtx)
			}
			if tc.ownCtx && seenCtx.Err() == nil {
				t.Error("the upgrade's own context outlived the handler")
			}
		})
	}
}
