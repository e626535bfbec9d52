package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

const testSecret = "a-real-shared-secret-of-more-than-32-bytes"

// Keys are generated once per test binary: RSA generation is slow.
var testKeys = sync.OnceValue(func() struct {
	rsa, rsa2, rsaSmall *rsa.PrivateKey
	ec, ec2, ec384      *ecdsa.PrivateKey
} {
	must := func(k any, err error) any {
		if err != nil {
			panic(err)
		}
		return k
	}
	var k struct {
		rsa, rsa2, rsaSmall *rsa.PrivateKey
		ec, ec2, ec384      *ecdsa.PrivateKey
	}
	k.rsa = must(rsa.GenerateKey(rand.Reader, 2048)).(*rsa.PrivateKey)
	k.rsa2 = must(rsa.GenerateKey(rand.Reader, 2048)).(*rsa.PrivateKey)
	k.rsaSmall = must(rsa.GenerateKey(rand.Reader, 1024)).(*rsa.PrivateKey)
	k.ec = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)).(*ecdsa.PrivateKey)
	k.ec2 = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)).(*ecdsa.PrivateKey)
	k.ec384 = must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)).(*ecdsa.PrivateKey)
	return k
})

// writeFile writes data to name in a fresh temporary directory of t.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pemPKIX encodes a public key as a PKIX "PUBLIC KEY" block.
func pemPKIX(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// pemCert encodes a self-signed certificate for key.
func pemCert(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "switchboard test"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// pemPKCS8 encodes a private key as PKCS #8 "PRIVATE KEY".
func pemPKCS8(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// jwkOf returns the JWK of a public key, with kid.
func jwkOf(kid string, pub crypto.PublicKey) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		size := (len(raw) - 1) / 2
		crv := map[int]string{32: "P-256", 48: "P-384"}[size]
		return map[string]any{"kty": "EC", "kid": kid, "crv": crv,
			"x": b64(raw[1 : 1+size]), "y": b64(raw[1+size:])}
	}
	panic("unsupported key")
}

// jwksJSON encodes a JWK Set.
func jwksJSON(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims returns valid claims for user alice at testNow, with changes
// applied: a nil value deletes the claim.
func claims(changes map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice",
		"iat": testNow.Unix(),
		"exp": testNow.Add(time.Hour).Unix(),
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs c with method and key, adding header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustVerifier builds a verifier with the fixed clock.
func mustVerifier(t testing.TB, cfg KeyConfig) *Verifier {
	t.Helper()
	cfg.Now = fixedNow
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
