package auth

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifyCase is one token against one verifier: want is nil for success or
// the reason sentinel the error must match.
type verifyCase struct {
	name  string
	token string
	want  error
	check func(t *testing.T, c Claims)
}

// runVerify runs cases against v and checks the error contract: every
// refusal matches ErrUnauthorized and exactly the expected reason, is a
// *TokenError, and its message contains neither the token nor the subject.
func runVerify(t *testing.T, v *Verifier, cases []verifyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tc.check != nil {
					tc.check(t, got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", got)
			}
			if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, tc.want) {
				t.Fatalf("Verify error %q: want ErrUnauthorized and %v", err, tc.want)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("Verify error %T is not a *TokenError", err)
			}
			msg := err.Error()
			if msg == "" || (len(tc.token) > 0 && strings.Contains(msg, tc.token)) || strings.Contains(msg, "alice") {
				t.Fatalf("Verify error message %q is empty or leaks the token or a claim", msg)
			}
			if got != (Claims{}) {
				t.Fatalf("refused token returned claims %+v", got)
			}
		})
	}
}

func TestVerifyHS256(t *testing.T) {
	k := testKeys()
	v := mustVerifier(t, KeyConfig{Secret: testSecret})
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), c, nil) }
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	valid := hs(claims(nil))
	parts := strings.Split(valid, ".")
	b64 := base64.RawURLEncoding.EncodeToString

	runVerify(t, v, []verifyCase{
		{name: "valid minimal", token: valid, check: func(t *testing.T, c Claims) {
			want := Claims{UserID: "alice", ExpiresAt: testNow.Add(time.Hour)}
			if c != want {
				t.Fatalf("claims %+v, want %+v", c, want)
			}
		}},
		{name: "valid with did and name", token: hs(claims(map[string]any{"did": "phone", "name": "QWxpY2U=\x01ciphertext"})),
			check: func(t *testing.T, c Claims) {
				if c.DeviceID != "phone" || c.Name != "QWxpY2U=\x01ciphertext" {
					t.Fatalf("claims %+v", c)
				}
			}},
		{name: "unicode sub", token: hs(claims(map[string]any{"sub": "ünïcødé|user 42"}))},
		{name: "sub of max length", token: hs(claims(map[string]any{"sub": strings.Repeat("a", MaxUserIDBytes)}))},
		{name: "did and name of max length", token: hs(claims(map[string]any{
			"did": strings.Repeat("d", MaxDeviceIDBytes), "name": strings.Repeat("n", MaxNameBytes)}))},
		{name: "null did", token: hs(claims(map[string]any{"did": nil}))},

		// Time claims.
		{name: "expired", token: hs(claims(map[string]any{"exp": testNow.Add(-time.Minute).Unix()})), want: ErrExpired},
		{name: "expired exactly at skew", token: hs(claims(map[string]any{"exp": testNow.Add(-DefaultClockSkew).Unix()})), want: ErrExpired},
		{name: "expired within skew", token: hs(claims(map[string]any{"exp": testNow.Add(-10 * time.Second).Unix()}))},
		{name: "missing exp", token: hs(claims(map[string]any{"exp": nil})), want: ErrMissingClaim},
		{name: "exp as string", token: hs(claims(map[string]any{"exp": "tomorrow"})), want: ErrMalformed},
		{name: "fractional exp", token: hs(claims(map[string]any{"exp": float64(testNow.Unix()) + 3600.5}))},
		{name: "nbf within skew", token: hs(claims(map[string]any{"nbf": testNow.Add(10 * time.Second).Unix()}))},
		{name: "nbf in future beyond skew", token: hs(claims(map[string]any{"nbf": testNow.Add(time.Minute).Unix()})), want: ErrNotYetValid},
		{name: "nbf in past", token: hs(claims(map[string]any{"nbf": testNow.Add(-time.Minute).Unix()}))},
		{name: "iat in future beyond skew", token: hs(claims(map[string]any{"iat": testNow.Add(time.Minute).Unix()})), want: ErrNotYetValid},
		{name: "iat within skew", token: hs(claims(map[string]any{"iat": testNow.Add(20 * time.Second).Unix()}))},
		{name: "no iat", token: hs(claims(map[string]any{"iat": nil}))},

		// Algorithms and signatures.
		{name: "alg none", token: none, want: ErrAlgorithm},
		{name: "HS384 with the same secret", token: sign(t, jwt.SigningMethodHS384, []byte(testSecret), claims(nil), nil), want: ErrAlgorithm},
		{name: "HS512 with the same secret", token: sign(t, jwt.SigningMethodHS512, []byte(testSecret), claims(nil), nil), want: ErrAlgorithm},
		{name: "RS256 token", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), nil), want: ErrAlgorithm},
		{name: "ES256 token", token: sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil), want: ErrAlgorithm},
		{name: "unknown alg", token: b64([]byte(`{"alg":"XX999","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], want: ErrAlgorithm},
		{name: "missing alg", token: b64([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], want: ErrAlgorithm},
		{name: "other secret", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-more-than-32-bytes!!"), claims(nil), nil), want: ErrSignature},
		{name: "development token", token: sign(t, jwt.SigningMethodHS256, []byte(DevelopmentSecret), claims(nil), nil), want: ErrSignature},
		{name: "tampered payload", token: parts[0] + "." + b64([]byte(`{"sub":"mallory","exp":`+strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10)+`}`)) + "." + parts[2], want: ErrSignature},
		{name: "signature removed", token: parts[0] + "." + parts[1] + ".", want: ErrSignature},
		{name: "crit header", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil), map[string]any{"crit": []string{"exp"}}), want: ErrMalformed},

		// Identity claims.
		{name: "missing sub", token: hs(claims(map[string]any{"sub": nil})), want: ErrMissingClaim},
		{name: "empty sub", token: hs(claims(map[string]any{"sub": ""})), want: ErrMissingClaim},
		{name: "numeric sub", token: hs(claims(map[string]any{"sub": 42})), want: ErrMalformed},
		{name: "oversized sub", token: hs(claims(map[string]any{"sub": strings.Repeat("a", MaxUserIDBytes+1)})), want: ErrInvalidClaim},
		{name: "sub with newline", token: hs(claims(map[string]any{"sub": "ali\nce"})), want: ErrInvalidClaim},
		{name: "sub with NUL", token: hs(claims(map[string]any{"sub": "ali\x00ce"})), want: ErrInvalidClaim},
		{name: "sub with C1 control", token: hs(claims(map[string]any{"sub": "ali\u0085ce"})), want: ErrInvalidClaim},
		{name: "oversized did", token: hs(claims(map[string]any{"did": strings.Repeat("d", MaxDeviceIDBytes+1)})), want: ErrInvalidClaim},
		{name: "did with colon", token: hs(claims(map[string]any{"did": "phone:2"})), want: ErrInvalidClaim},
		{name: "did with tab", token: hs(claims(map[string]any{"did": "pho\tne"})), want: ErrInvalidClaim},
		{name: "numeric did", token: hs(claims(map[string]any{"did": 7})), want: ErrMalformed},
		{name: "oversized name", token: hs(claims(map[string]any{"name": strings.Repeat("n", MaxNameBytes+1)})), want: ErrInvalidClaim},
		{name: "object name", token: hs(claims(map[string]any{"name": map[string]any{"first": "A"}})), want: ErrMalformed},

		// Malformed strings.
		{name: "empty", token: "", want: ErrNoToken},
		{name: "garbage", token: "not-a-token", want: ErrMalformed},
		{name: "two segments", token: parts[0] + "." + parts[1], want: ErrMalformed},
		{name: "four segments", token: valid + ".x", want: ErrMalformed},
		{name: "dots only", token: "..", want: ErrMalformed},
		{name: "bad base64 header", token: "%%%." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "bad base64 signature", token: parts[0] + "." + parts[1] + ".%%%", want: ErrMalformed},
		{name: "header not JSON", token: b64([]byte("nope")) + "." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "payload not JSON", token: parts[0] + "." + b64([]byte("nope")) + "." + parts[2], want: ErrMalformed},
		{name: "payload is array", token: parts[0] + "." + b64([]byte("[1,2]")) + "." + parts[2], want: ErrMalformed},
		{name: "oversized token", token: valid + strings.Repeat("A", MaxTokenBytes), want: ErrMalformed},
		{name: "bearer prefix", token: "Bearer " + valid, want: ErrMalformed},
	})
}

func TestVerifyIssuerAudience(t *testing.T) {
	v := mustVerifier(t, KeyConfig{Secret: testSecret, Issuer: "https://id.example", Audience: "switchboard"})
	hs := func(c map[string]any) string {
		return sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(c), nil)
	}
	runVerify(t, v, []verifyCase{
		{name: "matching", token: hs(map[string]any{"iss": "https://id.example", "aud": "switchboard"})},
		{name: "audience in list", token: hs(map[string]any{"iss": "https://id.example", "aud": []string{"other", "switchboard"}})},
		{name: "wrong issuer", token: hs(map[string]any{"iss": "https://evil.example", "aud": "switchboard"}), want: ErrIssuer},
		{name: "missing issuer", token: hs(map[string]any{"aud": "switchboard"}), want: ErrIssuer},
		{name: "wrong audience", token: hs(map[string]any{"iss": "https://id.example", "aud": "other"}), want: ErrAudience},
		{name: "missing audience", token: hs(map[string]any{"iss": "https://id.example"}), want: ErrAudience},
		{name: "audience list without ours", token: hs(map[string]any{"iss": "https://id.example", "aud": []string{"a", "b"}}), want: ErrAudience},
	})

	// Unconfigured: iss and aud are not checked.
	open := mustVerifier(t, KeyConfig{Secret: testSecret})
	runVerify(t, open, []verifyCase{
		{name: "any issuer and audience", token: hs(map[string]any{"iss": "whoever", "aud": "whatever"})},
	})
}

func TestVerifyClockSkewConfigurable(t *testing.T) {
	v := mustVerifier(t, KeyConfig{Secret: testSecret, ClockSkew: 2 * time.Minute})
	hs := func(c map[string]any) string {
		return sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(c), nil)
	}
	runVerify(t, v, []verifyCase{
		{name: "expired within wide skew", token: hs(map[string]any{"exp": testNow.Add(-time.Minute).Unix()})},
		{name: "nbf within wide skew", token: hs(map[string]any{"nbf": testNow.Add(time.Minute).Unix()})},
		{name: "expired beyond wide skew", token: hs(map[string]any{"exp": testNow.Add(-3 * time.Minute).Unix()}), want: ErrExpired},
	})
}

func TestVerifyRSA(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	pubPEM := pemPKIX(t, &k.rsa.PublicKey)
	v := mustVerifier(t, KeyConfig{PublicKeyFile: writeFile(t, dir, "rsa.pem", pubPEM)})
	if v.Development() {
		t.Fatal("RSA verifier reports development mode")
	}
	if got := v.Algorithms(); len(got) != 1 || got[0] != AlgRS256 {
		t.Fatalf("Algorithms() = %v, want [RS256]", got)
	}
	runVerify(t, v, []verifyCase{
		{name: "valid RS256", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), nil)},
		{name: "valid RS256 with any kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "whatever"})},
		// Key confusion: the public key, which is public, used as an HMAC secret.
		{name: "HS256 keyed with the public key PEM", token: sign(t, jwt.SigningMethodHS256, pubPEM, claims(nil), nil), want: ErrAlgorithm},
		{name: "development token", token: sign(t, jwt.SigningMethodHS256, []byte(DevelopmentSecret), claims(nil), nil), want: ErrAlgorithm},
		{name: "other RSA key", token: sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), nil), want: ErrSignature},
		{name: "RS512 with the right key", token: sign(t, jwt.SigningMethodRS512, k.rsa, claims(nil), nil), want: ErrAlgorithm},
		{name: "PS256 with the right key", token: sign(t, jwt.SigningMethodPS256, k.rsa, claims(nil), nil), want: ErrAlgorithm},
		{name: "ES256 token", token: sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil), want: ErrAlgorithm},
		{name: "expired RS256", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil), want: ErrExpired},
	})
}

func TestVerifyEC(t *testing.T) {
	k := testKeys()
	pubPEM := pemPKIX(t, &k.ec.PublicKey)
	v := mustVerifier(t, KeyConfig{PublicKeyFile: writeFile(t, t.TempDir(), "ec.pem", pubPEM)})
	runVerify(t, v, []verifyCase{
		{name: "valid ES256", token: sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil)},
		{name: "other EC key", token: sign(t, jwt.SigningMethodES256, k.ec2, claims(nil), nil), want: ErrSignature},
		{name: "HS256 keyed with the public key PEM", token: sign(t, jwt.SigningMethodHS256, pubPEM, claims(nil), nil), want: ErrAlgorithm},
		{name: "development token", token: sign(t, jwt.SigningMethodHS256, []byte(DevelopmentSecret), claims(nil), nil), want: ErrAlgorithm},
		{name: "RS256 token", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), nil), want: ErrAlgorithm},
		{name: "ES384 token", token: sign(t, jwt.SigningMethodES384, k.ec384, claims(nil), nil), want: ErrAlgorithm},
	})
}

func TestPublicKeyFormats(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	rsaToken := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), nil)
	ecToken := sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil)
	for _, tc := range []struct {
		name  string
		pem   []byte
		token string
	}{
		{"PKIX RSA", pemPKIX(t, &k.rsa.PublicKey), rsaToken},
		{"PKCS1 RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}), rsaToken},
		{"RSA certificate", pemCert(t, k.rsa), rsaToken},
		{"EC certificate", pemCert(t, k.ec), ecToken},
		{"PKIX EC with surrounding text", append([]byte("# rotated 2026-11\n"), pemPKIX(t, &k.ec.PublicKey)...), ecToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustVerifier(t, KeyConfig{PublicKeyFile: writeFile(t, dir, "key.pem", tc.pem)})
			if _, err := v.Verify(tc.token); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestNewVerifierErrors(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	pub := writeFile(t, dir, "pub.pem", pemPKIX(t, &k.rsa.PublicKey))
	jwks := writeFile(t, dir, "jwks.json", jwksJSON(t, jwkOf("a", &k.rsa.PublicKey)))
	for _, tc := range []struct {
		name string
		cfg  KeyConfig
	}{
		{"secret and public key", KeyConfig{Secret: testSecret, PublicKeyFile: pub}},
		{"public key and JWKS", KeyConfig{PublicKeyFile: pub, JWKSFile: jwks}},
		{"secret and JWKS", KeyConfig{Secret: testSecret, JWKSFile: jwks}},
		{"development secret configured as real", KeyConfig{Secret: DevelopmentSecret}},
		{"secret shorter than 32 bytes", KeyConfig{Secret: "CHANGE-ME"}},
		{"secret of 31 bytes", KeyConfig{Secret: strings.Repeat("s", MinSecretBytes-1)}},
		{"negative skew", KeyConfig{Secret: testSecret, ClockSkew: -time.Second}},
		{"missing public key file", KeyConfig{PublicKeyFile: dir + "/missing.pem"}},
		{"missing JWKS file", KeyConfig{JWKSFile: dir + "/missing.json"}},
		{"not PEM", KeyConfig{PublicKeyFile: writeFile(t, dir, "junk.pem", []byte("hello"))}},
		{"private key as public key", KeyConfig{PublicKeyFile: writeFile(t, dir, "priv.pem", pemPKCS8(t, k.rsa))}},
		{"RSA key too small", KeyConfig{PublicKeyFile: writeFile(t, dir, "small.pem", pemPKIX(t, &k.rsaSmall.PublicKey))}},
		{"EC P-384 key", KeyConfig{PublicKeyFile: writeFile(t, dir, "p384.pem", pemPKIX(t, &k.ec384.PublicKey))}},
		{"corrupt PEM body", KeyConfig{PublicKeyFile: writeFile(t, dir, "corrupt.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("xx")}))}},
		{"JWKS not JSON", KeyConfig{JWKSFile: writeFile(t, dir, "bad.json", []byte("{"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.cfg)
			if err == nil {
				t.Fatalf("NewVerifier accepted the configuration (algorithms %v)", v.Algorithms())
			}
			if !errors.Is(err, ErrKeyConfig) {
				t.Fatalf("error %q does not match ErrKeyConfig", err)
			}
			if tc.cfg.Secret != "" && strings.Contains(err.Error(), tc.cfg.Secret) {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}

func TestDevelopmentKey(t *testing.T) {
	dev := mustVerifier(t, KeyConfig{})
	if !dev.Development() {
		t.Fatal("verifier without a key does not report development mode")
	}
	if len(dev.Warnings()) == 0 {
		t.Fatal("development verifier has no warning")
	}
	tok, err := Mint(SigningKey{Now: fixedNow}, Claims{UserID: "alice", DeviceID: "phone"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dev.Verify(tok)
	if err != nil {
		t.Fatalf("development verifier refused a development token: %v", err)
	}
	if c.UserID != "alice" || c.DeviceID != "phone" {
		t.Fatalf("claims %+v", c)
	}

	// A real secret never accepts the development token.
	prod := mustVerifier(t, KeyConfig{Secret: testSecret})
	if prod.Development() {
		t.Fatal("verifier with a secret reports development mode")
	}
	if _, err := NewVerifier(KeyConfig{Secret: strings.Repeat("s", MinSecretBytes)}); err != nil {
		t.Fatalf("a secret of exactly %d bytes: %v", MinSecretBytes, err)
	}
	if w := prod.Warnings(); len(w) != 0 {
		t.Fatalf("unexpected warnings %q", w)
	}
	if _, err := prod.Verify(tok); !errors.Is(err, ErrSignature) {
		t.Fatalf("real secret on a development token: %v, want ErrSignature", err)
	}

	// Nor does a JWKS or a public key (checked in their own tests too).
	k := testKeys()
	jv := mustVerifier(t, KeyConfig{JWKSFile: writeFile(t, t.TempDir(), "jwks.json", jwksJSON(t, jwkOf("a", &k.rsa.PublicKey)))})
	if _, err := jv.Verify(tok); !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("JWKS verifier on a development token: %v, want ErrAlgorithm", err)
	}
}

func TestReloadWithoutFileIsNoop(t *testing.T) {
	v := mustVerifier(t, KeyConfig{Secret: testSecret})
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := v.Algorithms(); len(got) != 1 || got[0] != AlgHS256 {
		t.Fatalf("Algorithms() = %v", got)
	}
}
