package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// SessionTokenBytes is the number of random bytes in a guest session token
// (256 bits; the contract asks for at least 128).
const SessionTokenBytes = 32

// maxSessionTokenBytes bounds the tokens CheckSessionToken hashes, so that a
// client cannot make the server hash megabytes.
const maxSessionTokenBytes = 256

// NewSessionToken returns a new guest session token and its hash. The token
// is SessionTokenBytes bytes from crypto/rand, base64url without padding
// (URL-safe, 43 characters); it is given to the guest once and never stored.
// The hash (hex SHA-256 of the token) is what the store keeps.
func NewSessionToken() (token, hash string) {
	b := make([]byte, SessionTokenBytes)
	rand.Read(b) // never returns an error; crashes the program if the OS cannot supply randomness
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashSessionToken(token)
}

// HashSessionToken returns the hex SHA-256 of token, the form in which
// session tokens are stored.
func HashSessionToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CheckSessionToken reports whether token hashes to hash, comparing in
// constant time. An empty or oversized token, or a malformed hash, never
// matches.
func CheckSessionToken(token, hash string) bool {
	if token == "" || len(token) > maxSessionTokenBytes {
		return false
	}
	want, err := hex.DecodeString(hash)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}
