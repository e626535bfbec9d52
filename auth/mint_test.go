package auth

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestMintRoundTrip(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	ecDER, err := x509.MarshalECPrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	jwks := writeFile(t, dir, "jwks.json", jwksJSON(t, jwkOf("r", &k.rsa.PublicKey), jwkOf("e", &k.ec.PublicKey)))
	in := Claims{UserID: "alice", DeviceID: "phone", Name: "opaque\x00ciphertext"}

	for _, tc := range []struct {
		name     string
		key      SigningKey
		verifier KeyConfig
	}{
		{"development", SigningKey{}, KeyConfig{}},
		{"HS256", SigningKey{Secret: testSecret}, KeyConfig{Secret: testSecret}},
		{"HS256 with iss and aud", SigningKey{Secret: testSecret, Issuer: "iss", Audience: "aud"},
			KeyConfig{Secret: testSecret, Issuer: "iss", Audience: "aud"}},
		{"RS256 PKCS8", SigningKey{PrivateKeyFile: writeFile(t, dir, "rsa8.pem", pemPKCS8(t, k.rsa))},
			KeyConfig{PublicKeyFile: writeFile(t, dir, "rsa.pub", pemPKIX(t, &k.rsa.PublicKey))}},
		{"RS256 PKCS1", SigningKey{PrivateKeyFile: writeFile(t, dir, "rsa1.pem",
			pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.rsa)}))},
			KeyConfig{PublicKeyFile: writeFile(t, dir, "rsa.pub", pemPKIX(t, &k.rsa.PublicKey))}},
		{"ES256 SEC1", SigningKey{PrivateKeyFile: writeFile(t, dir, "ec.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))},
			KeyConfig{PublicKeyFile: writeFile(t, dir, "ec.pub", pemPKIX(t, &k.ec.PublicKey))}},
		{"ES256 with kid against JWKS", SigningKey{KeyID: "e", PrivateKeyFile: writeFile(t, dir, "ec8.pem", pemPKCS8(t, k.ec))},
			KeyConfig{JWKSFile: jwks}},
		{"RS256 with kid against JWKS", SigningKey{KeyID: "r", PrivateKeyFile: writeFile(t, dir, "rsa8b.pem", pemPKCS8(t, k.rsa))},
			KeyConfig{JWKSFile: jwks}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.key.Now = fixedNow
			tok, err := Mint(tc.key, in, 2*time.Hour)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			if tc.key.Development() != (tc.key.Secret == "" && tc.key.PrivateKeyFile == "") {
				t.Fatal("Development() disagrees with the key")
			}
			got, err := mustVerifier(t, tc.verifier).Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := in
			want.ExpiresAt = testNow.Add(2 * time.Hour)
			if got != want {
				t.Fatalf("claims %+v, want %+v", got, want)
			}
		})
	}
}

func TestMintErrors(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	priv := writeFile(t, dir, "priv.pem", pemPKCS8(t, k.rsa))
	for _, tc := range []struct {
		name string
		key  SigningKey
		c    Claims
		ttl  time.Duration
	}{
		{"no sub", SigningKey{}, Claims{}, time.Hour},
		{"sub with newline", SigningKey{}, Claims{UserID: "a\nb"}, time.Hour},
		{"did with colon", SigningKey{}, Claims{UserID: "a", DeviceID: "x:y"}, time.Hour},
		{"oversized name", SigningKey{}, Claims{UserID: "a", Name: strings.Repeat("n", MaxNameBytes+1)}, time.Hour},
		{"zero ttl", SigningKey{}, Claims{UserID: "a"}, 0},
		{"negative ttl", SigningKey{}, Claims{UserID: "a"}, -time.Hour},
		{"secret and private key", SigningKey{Secret: testSecret, PrivateKeyFile: priv}, Claims{UserID: "a"}, time.Hour},
		{"missing private key file", SigningKey{PrivateKeyFile: dir + "/missing.pem"}, Claims{UserID: "a"}, time.Hour},
		{"public key as private key", SigningKey{PrivateKeyFile: writeFile(t, dir, "pub.pem", pemPKIX(t, &k.rsa.PublicKey))}, Claims{UserID: "a"}, time.Hour},
		{"small RSA private key", SigningKey{PrivateKeyFile: writeFile(t, dir, "small.pem", pemPKCS8(t, k.rsaSmall))}, Claims{UserID: "a"}, time.Hour},
		{"P-384 private key", SigningKey{PrivateKeyFile: writeFile(t, dir, "p384.pem", pemPKCS8(t, k.ec384))}, Claims{UserID: "a"}, time.Hour},
		{"not PEM", SigningKey{PrivateKeyFile: writeFile(t, dir, "junk.pem", []byte("junk"))}, Claims{UserID: "a"}, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Mint(tc.key, tc.c, tc.ttl)
			if !errors.Is(err, ErrMint) {
				t.Fatalf("Mint = %q, %v; want ErrMint", tok, err)
			}
		})
	}
}

func TestTokenCommand(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	priv := writeFile(t, dir, "priv.pem", pemPKCS8(t, k.ec))
	pub := writeFile(t, dir, "pub.pem", pemPKIX(t, &k.ec.PublicKey))
	envOf := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		verifier KeyConfig
		want     Claims // ExpiresAt is checked separately
		ttl      time.Duration
	}{
		{name: "development key", args: []string{"--sub", "alice"}, want: Claims{UserID: "alice"}, ttl: DefaultTokenTTL},
		{name: "all claims", args: []string{"--sub", "alice", "--did", "phone", "--name", "Alice", "--ttl", "1h"},
			want: Claims{UserID: "alice", DeviceID: "phone", Name: "Alice"}, ttl: time.Hour},
		{name: "single-dash flags", args: []string{"-sub=bob", "-ttl=90m"}, want: Claims{UserID: "bob"}, ttl: 90 * time.Minute},
		{name: "secret from env", args: []string{"--sub", "alice"},
			env:      map[string]string{"SWITCHBOARD_JWT_SECRET": testSecret, "SWITCHBOARD_JWT_ISSUER": "i", "SWITCHBOARD_JWT_AUDIENCE": "a"},
			verifier: KeyConfig{Secret: testSecret, Issuer: "i", Audience: "a"}, want: Claims{UserID: "alice"}, ttl: DefaultTokenTTL},
		{name: "flag secret overrides env", args: []string{"--sub", "alice", "--jwt-secret", testSecret + "-flag"},
			env:      map[string]string{"SWITCHBOARD_JWT_SECRET": testSecret},
			verifier: KeyConfig{Secret: testSecret + "-flag"}, want: Claims{UserID: "alice"}, ttl: DefaultTokenTTL},
		{name: "private key from env with public key configured", args: []string{"--sub", "alice"},
			env:      map[string]string{"SWITCHBOARD_JWT_PRIVATE_KEY": priv, "SWITCHBOARD_JWT_PUBLIC_KEY": pub},
			verifier: KeyConfig{PublicKeyFile: pub}, want: Claims{UserID: "alice"}, ttl: DefaultTokenTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			before := time.Now()
			if err := TokenCommand(tc.args, envOf(tc.env), &out); err != nil {
				t.Fatalf("TokenCommand: %v", err)
			}
			s := out.String()
			if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
				t.Fatalf("output %q is not one line", s)
			}
			cfg := tc.verifier
			v, err := NewVerifier(cfg) // real clock: the token was minted now
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(strings.TrimSpace(s))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			exp := got.ExpiresAt
			got.ExpiresAt = time.Time{}
			if got != tc.want {
				t.Fatalf("claims %+v, want %+v", got, tc.want)
			}
			if lo, hi := before.Add(tc.ttl-time.Second), time.Now().Add(tc.ttl+time.Second); exp.Before(lo) || exp.After(hi) {
				t.Fatalf("exp %v not within [%v, %v]", exp, lo, hi)
			}
		})
	}
}

func TestTokenCommandErrors(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		is   error // nil: any error
	}{
		{name: "missing sub", args: nil, is: ErrMint},
		{name: "unknown flag", args: []string{"--sub", "a", "--bogus"}},
		{name: "bad ttl", args: []string{"--sub", "a", "--ttl", "soon"}},
		{name: "zero ttl", args: []string{"--sub", "a", "--ttl", "0s"}, is: ErrMint},
		{name: "positional argument", args: []string{"--sub", "a", "extra"}},
		{name: "public key without private key", args: []string{"--sub", "a"},
			env: map[string]string{"SWITCHBOARD_JWT_PUBLIC_KEY": "/etc/key.pem"}, is: ErrMint},
		{name: "JWKS without private key", args: []string{"--sub", "a"},
			env: map[string]string{"SWITCHBOARD_JWT_JWKS": "/etc/jwks.json"}, is: ErrMint},
		{name: "secret and private key", args: []string{"--sub", "a"},
			env: map[string]string{"SWITCHBOARD_JWT_SECRET": testSecret, "SWITCHBOARD_JWT_PRIVATE_KEY": "/k.pem"}, is: ErrMint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := TokenCommand(tc.args, env(tc.env), &out)
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("TokenCommand: %v, want %v", err, tc.is)
			}
			if out.Len() != 0 {
				t.Fatalf("output on error: %q", out.String())
			}
		})
	}
}

func TestTokenCommandHelp(t *testing.T) {
	var out strings.Builder
	env := func(k string) string {
		if k == "SWITCHBOARD_JWT_SECRET" {
			return testSecret
		}
		return ""
	}
	if err := TokenCommand([]string{"-h"}, env, &out); err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "--sub") || !strings.Contains(out.String(), "-ttl") {
		t.Fatalf("usage %q", out.String())
	}
	if strings.Contains(out.String(), testSecret) {
		t.Fatal("usage prints the secret")
	}
}
