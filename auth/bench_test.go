package auth

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func benchVerify(b *testing.B, v *Verifier, token string) {
	b.Helper()
	if _, err := v.Verify(token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	v := mustVerifier(b, KeyConfig{Secret: testSecret})
	benchVerify(b, v, sign(b, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"did": "phone"}), nil))
}

func BenchmarkVerifyES256(b *testing.B) {
	k := testKeys()
	v := mustVerifier(b, KeyConfig{PublicKeyFile: writeFile(b, b.TempDir(), "ec.pem", pemPKIX(b, &k.ec.PublicKey))})
	benchVerify(b, v, sign(b, jwt.SigningMethodES256, k.ec, claims(map[string]any{"did": "phone"}), nil))
}

func BenchmarkVerifyRS256(b *testing.B) {
	k := testKeys()
	v := mustVerifier(b, KeyConfig{PublicKeyFile: writeFile(b, b.TempDir(), "rsa.pem", pemPKIX(b, &k.rsa.PublicKey))})
	benchVerify(b, v, sign(b, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"did": "phone"}), nil))
}

// BenchmarkVerifyJWKS measures kid selection on top of ES256.
func BenchmarkVerifyJWKS(b *testing.B) {
	k := testKeys()
	v := mustVerifier(b, KeyConfig{JWKSFile: writeFile(b, b.TempDir(), "jwks.json",
		jwksJSON(b, jwkOf("r", &k.rsa.PublicKey), jwkOf("e", &k.ec.PublicKey)))})
	benchVerify(b, v, sign(b, jwt.SigningMethodES256, k.ec, claims(nil), map[string]any{"kid": "e"}))
}

func BenchmarkNewSessionToken(b *testing.B) {
	for b.Loop() {
		NewSessionToken()
	}
}
