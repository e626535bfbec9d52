// Package auth verifies and mints the JWTs that members present at the
// Socket.IO handshake and on REST calls (SPEC 1.1), and creates and checks the
// secret session tokens of external guests (SPEC 1.2).
//
// # Keys and algorithms
//
// A [Verifier] is built from exactly one key source:
//
//   - a shared secret of at least [MinSecretBytes] bytes: accepts exactly
//     HS256;
//   - a PEM public key file: an RSA key (at least 2048 bits) accepts exactly
//     RS256, an EC P-256 key exactly ES256;
//   - a JWKS file: RSA and EC P-256 keys, each accepting only its own
//     algorithm, selected by the token's "kid" header. [Verifier.Reload]
//     re-reads the file, so keys are rotated by replacing it.
//
// The accepted algorithms follow from the configured key and never from the
// token: an HS256 token presented to an RSA-configured verifier (the classic
// key-confusion attack) and "alg": "none" are refused.
//
// With no key at all, the verifier uses [DevelopmentSecret], a fixed,
// published and therefore insecure HS256 secret, so that a node can run
// locally; [Verifier.Development] reports it and [Verifier.Warnings] says so
// in words for the start-up log. A verifier with a real key never accepts
// development tokens.
//
// # Claims
//
// "exp" is required; "nbf" and "iat" are honoured with a clock skew (default
// [DefaultClockSkew]); "iss" and "aud" are checked when configured. "sub" is
// the user id (required), "did" the optional device id, "name" the optional,
// opaque display name. See [Claims] for the limits.
//
// # Errors
//
// Every error [Verifier.Verify] returns matches [ErrUnauthorized] and one of
// the reason sentinels (ErrExpired, ErrSignature, ...) with errors.Is. Its
// message is a short human sentence fit to send to the client: it never
// contains the token or a claim value.
package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DevelopmentSecret is the HS256 secret used when no key is configured. It is
// published in the source code and the documentation, so anyone can mint
// tokens for any user with it: it is for local development only and is never
// accepted by a verifier configured with a real key.
const DevelopmentSecret = "switchboard-development-key-INSECURE-do-not-use-in-production"

// Limits on tokens and claims.
const (
	// DefaultClockSkew is the tolerance applied to exp, nbf and iat when the
	// key configuration does not set one.
	DefaultClockSkew = 30 * time.Second
	// MaxTokenBytes bounds the size of a token; longer ones are refused
	// before any decoding.
	MaxTokenBytes = 8 << 10
	// MaxUserIDBytes bounds "sub".
	MaxUserIDBytes = 256
	// MaxDeviceIDBytes bounds "did".
	MaxDeviceIDBytes = 128
	// MaxNameBytes bounds "name".
	MaxNameBytes = 1 << 10
	// MinSecretBytes is the shortest HS256 secret a verifier accepts: RFC
	// 7518 asks for a key at least as long as the hash.
	MinSecretBytes = 32
)

// Signing algorithms.
const (
	AlgHS256 = "HS256"
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// Claims is the identity a verified token carries.
type Claims struct {
	// UserID is "sub": non-empty, at most MaxUserIDBytes bytes of valid
	// UTF-8 without control characters.
	UserID string
	// DeviceID is "did", or empty: at most MaxDeviceIDBytes bytes of valid
	// UTF-8 without control characters and without ':' (so that the room
	// name device:<sub>:<did> names exactly one device).
	DeviceID string
	// Name is "name", or empty: at most MaxNameBytes bytes, opaque (it may
	// be ciphertext), never parsed.
	Name string
	// ExpiresAt is "exp".
	ExpiresAt time.Time
}

// ErrUnauthorized is matched by every error [Verifier.Verify] returns: the
// caller answers with code "unauthorized" and err.Error() as the message.
var ErrUnauthorized = errors.New("unauthorized")

// Reasons a token is refused. Each [TokenError] matches exactly one of them
// with errors.Is, besides ErrUnauthorized.
var (
	// ErrNoToken: the token is empty.
	ErrNoToken = errors.New("no token")
	// ErrMalformed: the token is not a well-formed JWS compact JWT, or is
	// too large.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm: the token's "alg" is not the one the key accepts.
	ErrAlgorithm = errors.New("algorithm not accepted")
	// ErrUnknownKey: no configured key has the token's "kid".
	ErrUnknownKey = errors.New("unknown key id")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("invalid signature")
	// ErrExpired: "exp" has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: "nbf" or "iat" is in the future.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrMissingClaim: "exp" or "sub" is absent.
	ErrMissingClaim = errors.New("missing claim")
	// ErrIssuer: "iss" is not the configured issuer.
	ErrIssuer = errors.New("issuer not accepted")
	// ErrAudience: "aud" does not contain the configured audience.
	ErrAudience = errors.New("audience not accepted")
	// ErrInvalidClaim: a claim is too large or holds forbidden characters.
	ErrInvalidClaim = errors.New("invalid claim")
)

// ErrKeyConfig is matched by errors about the key configuration itself (a
// missing file, an unsupported key type, several key sources at once).
var ErrKeyConfig = errors.New("invalid JWT key configuration")

// TokenError is the error [Verifier.Verify] returns. Error() is a human
// sentence for the client; it never contains the token or a claim value.
type TokenError struct {
	// Reason is one of the reason sentinels (ErrExpired, ...).
	Reason error
	// Message is the human sentence.
	Message string
	// cause is the underlying library error, kept for errors.Is/As but left
	// out of the message.
	cause error
}

// Error returns the human sentence.
func (e *TokenError) Error() string { return e.Message }

// Unwrap exposes ErrUnauthorized, the reason and the underlying cause to
// errors.Is and errors.As.
func (e *TokenError) Unwrap() []error {
	errs := []error{ErrUnauthorized, e.Reason}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// refuse builds a TokenError.
func refuse(reason error, message string, cause error) *TokenError {
	return &TokenError{Reason: reason, Message: message, cause: cause}
}

// checkIdentity validates the identity claims shared by verification and
// minting. It returns a human sentence naming the claim (never its value),
// or "" when the claims are acceptable.
func checkIdentity(sub, did, name string) string {
	switch {
	case sub == "":
		return "the token has no subject (sub)"
	case len(sub) > MaxUserIDBytes:
		return fmt.Sprintf("the token subject (sub) is longer than %d bytes", MaxUserIDBytes)
	case !printable(sub):
		return "the token subject (sub) contains control characters or invalid UTF-8"
	case len(did) > MaxDeviceIDBytes:
		return fmt.Sprintf("the token device id (did) is longer than %d bytes", MaxDeviceIDBytes)
	case !printable(did):
		return "the token device id (did) contains control characters or invalid UTF-8"
	case strings.ContainsRune(did, ':'):
		return "the token device id (did) contains ':'"
	case len(name) > MaxNameBytes:
		return fmt.Sprintf("the token name is longer than %d bytes", MaxNameBytes)
	}
	return ""
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
