package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestJWKSKidSelection(t *testing.T) {
	k := testKeys()
	path := writeFile(t, t.TempDir(), "jwks.json", jwksJSON(t,
		jwkOf("r1", &k.rsa.PublicKey),
		jwkOf("e1", &k.ec.PublicKey),
		// Ignored entries: symmetric, encryption-only, other algorithm,
		// other curve, unknown type.
		map[string]any{"kty": "oct", "kid": "h1", "k": "c2VjcmV0"},
		withField(jwkOf("enc", &k.rsa2.PublicKey), "use", "enc"),
		withField(jwkOf("ps", &k.rsa2.PublicKey), "alg", "PS256"),
		jwkOf("p384", &k.ec384.PublicKey),
		map[string]any{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
	))
	v := mustVerifier(t, KeyConfig{JWKSFile: path})
	if got := strings.Join(v.Algorithms(), ","); got != "ES256,RS256" {
		t.Fatalf("Algorithms() = %s, want ES256,RS256", got)
	}
	kid := func(id string) map[string]any { return map[string]any{"kid": id} }
	runVerify(t, v, []verifyCase{
		{name: "RSA key by kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), kid("r1"))},
		{name: "EC key by kid", token: sign(t, jwt.SigningMethodES256, k.ec, claims(nil), kid("e1"))},
		{name: "EC-signed token naming the RSA kid", token: sign(t, jwt.SigningMethodES256, k.ec, claims(nil), kid("r1")), want: ErrAlgorithm},
		{name: "RSA-signed token naming the EC kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), kid("e1")), want: ErrAlgorithm},
		{name: "right kid, wrong RSA key", token: sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), kid("r1")), want: ErrSignature},
		{name: "unknown kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), kid("r9")), want: ErrUnknownKey},
		{name: "no kid with several keys", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), nil), want: ErrUnknownKey},
		{name: "numeric kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": 1}), want: ErrMalformed},
		{name: "skipped encryption key", token: sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), kid("enc")), want: ErrUnknownKey},
		{name: "skipped PS256 key", token: sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), kid("ps")), want: ErrUnknownKey},
		{name: "oct key is never an HMAC key", token: sign(t, jwt.SigningMethodHS256, []byte("secret"), claims(nil), kid("h1")), want: ErrAlgorithm},
		{name: "development token", token: sign(t, jwt.SigningMethodHS256, []byte(DevelopmentSecret), claims(nil), nil), want: ErrAlgorithm},
		{name: "HS256 keyed with the RSA modulus", token: sign(t, jwt.SigningMethodHS256, k.rsa.N.Bytes(), claims(nil), kid("r1")), want: ErrAlgorithm},
		{name: "alg none", token: noneToken(t, kid("r1")), want: ErrAlgorithm},
	})

	// A single-key set also serves tokens without kid.
	single := mustVerifier(t, KeyConfig{JWKSFile: writeFile(t, t.TempDir(), "one.json",
		jwksJSON(t, jwkOf("only", &k.ec.PublicKey)))})
	runVerify(t, single, []verifyCase{
		{name: "no kid, single key", token: sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil)},
		{name: "other kid, single key", token: sign(t, jwt.SigningMethodES256, k.ec, claims(nil), kid("x")), want: ErrUnknownKey},
	})
}

func withField(m map[string]any, k string, v any) map[string]any {
	m[k] = v
	return m
}

func noneToken(t *testing.T, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil))
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWKSErrors(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	good := jwkOf("a", &k.rsa.PublicKey)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty set", jwksJSON(t)},
		{"only symmetric keys", jwksJSON(t, map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"})},
		{"duplicate kid", jwksJSON(t, good, jwkOf("a", &k.ec.PublicKey))},
		{"RSA modulus not base64url", jwksJSON(t, withField(jwkOf("a", &k.rsa.PublicKey), "n", "***"))},
		{"RSA exponent even", jwksJSON(t, withField(jwkOf("a", &k.rsa.PublicKey), "e", "Ag"))},
		{"RSA exponent missing", jwksJSON(t, withField(jwkOf("a", &k.rsa.PublicKey), "e", ""))},
		{"RSA key too small", jwksJSON(t, jwkOf("a", &k.rsaSmall.PublicKey))},
		{"EC point not on curve", jwksJSON(t, withField(jwkOf("a", &k.ec.PublicKey), "y", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))},
		{"EC coordinate short", jwksJSON(t, withField(jwkOf("a", &k.ec.PublicKey), "x", "AAAA"))},
		{"keys not a list", []byte(`{"keys": {}}`)},
		{"key not an object", []byte(`{"keys": [1]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(KeyConfig{JWKSFile: writeFile(t, dir, "jwks.json", tc.data)})
			if !errors.Is(err, ErrKeyConfig) {
				t.Fatalf("NewVerifier: %v, want ErrKeyConfig", err)
			}
		})
	}
}

// replaceFile swaps path's content atomically, the way key rotation
// tooling (and Kubernetes ConfigMap volumes) replace files.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSReload(t *testing.T) {
	k := testKeys()
	path := writeFile(t, t.TempDir(), "jwks.json", jwksJSON(t, jwkOf("k1", &k.rsa.PublicKey)))
	v := mustVerifier(t, KeyConfig{JWKSFile: path})
	tok1 := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "k1"})
	tok2 := sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), map[string]any{"kid": "k2"})

	expect := func(tok string, want error) {
		t.Helper()
		_, err := v.Verify(tok)
		if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("Verify: %v, want %v", err, want)
		}
	}
	expect(tok1, nil)
	expect(tok2, ErrUnknownKey)

	// Rotation: the new key is added, then the old one retired.
	replaceFile(t, path, jwksJSON(t, jwkOf("k1", &k.rsa.PublicKey), jwkOf("k2", &k.rsa2.PublicKey)))
	expect(tok2, ErrUnknownKey) // not before Reload
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	expect(tok1, nil)
	expect(tok2, nil)

	replaceFile(t, path, jwksJSON(t, jwkOf("k2", &k.rsa2.PublicKey)))
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	expect(tok1, ErrUnknownKey)
	expect(tok2, nil)

	// A broken file keeps the previous keys.
	replaceFile(t, path, []byte(`{"keys": [`))
	if err := v.Reload(); !errors.Is(err, ErrKeyConfig) {
		t.Fatalf("Reload of a broken file: %v, want ErrKeyConfig", err)
	}
	expect(tok2, nil)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); !errors.Is(err, ErrKeyConfig) {
		t.Fatalf("Reload of a missing file: %v, want ErrKeyConfig", err)
	}
	expect(tok2, nil)
}

func TestPublicKeyReload(t *testing.T) {
	k := testKeys()
	path := writeFile(t, t.TempDir(), "key.pem", pemPKIX(t, &k.rsa.PublicKey))
	v := mustVerifier(t, KeyConfig{PublicKeyFile: path})
	ecTok := sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil)
	if _, err := v.Verify(ecTok); !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("before rotation: %v", err)
	}
	replaceFile(t, path, pemPKIX(t, &k.ec.PublicKey))
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ecTok); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
}

func TestWatch(t *testing.T) {
	k := testKeys()
	path := writeFile(t, t.TempDir(), "jwks.json", jwksJSON(t, jwkOf("k1", &k.rsa.PublicKey)))
	v := mustVerifier(t, KeyConfig{JWKSFile: path})
	tok2 := sign(t, jwt.SigningMethodES256, k.ec, claims(nil), map[string]any{"kid": "k2"})

	var (
		mu   sync.Mutex
		errs []error
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Watch(ctx, 5*time.Millisecond, func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	replaceFile(t, path, jwksJSON(t, jwkOf("k2", &k.ec.PublicKey)))
	waitFor("the rotated key", func() bool { _, err := v.Verify(tok2); return err == nil })

	replaceFile(t, path, []byte("broken"))
	waitFor("the error report", func() bool { mu.Lock(); defer mu.Unlock(); return len(errs) > 0 })
	time.Sleep(50 * time.Millisecond) // several more ticks on the same broken content
	mu.Lock()
	n := len(errs)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("a broken file was reported %d times, want once", n)
	}
	if _, err := v.Verify(tok2); err != nil {
		t.Fatalf("keys lost after a broken file: %v", err)
	}
}

func TestWatchReturnsWithoutFile(t *testing.T) {
	v := mustVerifier(t, KeyConfig{Secret: testSecret})
	done := make(chan struct{})
	go func() { v.Watch(context.Background(), time.Millisecond, nil); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Watch without a key file did not return")
	}
}

// TestReloadConcurrent runs Verify during reloads under the race detector.
func TestReloadConcurrent(t *testing.T) {
	k := testKeys()
	path := writeFile(t, t.TempDir(), "jwks.json", jwksJSON(t, jwkOf("k1", &k.ec.PublicKey)))
	v := mustVerifier(t, KeyConfig{JWKSFile: path})
	tok := sign(t, jwt.SigningMethodES256, k.ec, claims(nil), map[string]any{"kid": "k1"})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := v.Verify(tok); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 20 {
		if err := v.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
