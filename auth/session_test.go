package auth

import (
	"regexp"
	"strings"
	"testing"
)

func TestSessionToken(t *testing.T) {
	urlSafe := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	seen := make(map[string]bool)
	for range 1000 {
		tok, hash := NewSessionToken()
		if !urlSafe.MatchString(tok) {
			t.Fatalf("token %q is not 43 URL-safe characters (256 bits)", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q repeated", tok)
		}
		seen[tok] = true
		if len(hash) != 64 || hash != HashSessionToken(tok) {
			t.Fatalf("hash %q is not the hex SHA-256 of the token", hash)
		}
		if strings.Contains(hash, tok) {
			t.Fatal("hash contains the token")
		}
	}
}

func TestCheckSessionToken(t *testing.T) {
	tok, hash := NewSessionToken()
	other, otherHash := NewSessionToken()
	for _, tc := range []struct {
		name        string
		token, hash string
		want        bool
	}{
		{"matching", tok, hash, true},
		{"upper-case hex hash", tok, strings.ToUpper(hash), true},
		{"other token", other, hash, false},
		{"other hash", tok, otherHash, false},
		{"empty token", "", HashSessionToken(""), false},
		{"empty hash", tok, "", false},
		{"hash not hex", tok, strings.Repeat("z", 64), false},
		{"truncated hash", tok, hash[:62], false},
		{"token as hash", tok, tok, false},
		{"token with suffix", tok + "x", hash, false},
		{"oversized token", strings.Repeat("a", 10000), HashSessionToken(strings.Repeat("a", 10000)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckSessionToken(tc.token, tc.hash); got != tc.want {
				t.Fatalf("CheckSessionToken = %v, want %v", got, tc.want)
			}
		})
	}
}
