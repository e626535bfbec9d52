package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify checks that no token string makes Verify panic, that every
// refusal honours the error contract, and that nothing but a correctly
// signed token is accepted.
func FuzzVerify(f *testing.F) {
	k := testKeys()
	dir := f.TempDir()
	verifiers := []*Verifier{
		mustVerifier(f, KeyConfig{Secret: testSecret, Issuer: "iss", Audience: "aud"}),
		mustVerifier(f, KeyConfig{PublicKeyFile: writeFile(f, dir, "rsa.pem", pemPKIX(f, &k.rsa.PublicKey))}),
		mustVerifier(f, KeyConfig{JWKSFile: writeFile(f, dir, "jwks.json",
			jwksJSON(f, jwkOf("r", &k.rsa.PublicKey), jwkOf("e", &k.ec.PublicKey)))}),
	}
	full := claims(map[string]any{"did": "phone", "name": "n", "iss": "iss", "aud": "aud", "nbf": testNow.Unix()})
	for _, s := range []string{
		"", ".", "..", "a.b.c", "e30.e30.", "eyJhbGciOiJub25lIn0.e30.",
		sign(f, jwt.SigningMethodHS256, []byte(testSecret), full, nil),
		sign(f, jwt.SigningMethodHS256, []byte(DevelopmentSecret), claims(nil), nil),
		sign(f, jwt.SigningMethodRS256, k.rsa, full, map[string]any{"kid": "r"}),
		sign(f, jwt.SigningMethodES256, k.ec, full, map[string]any{"kid": "e", "crit": []string{"x"}}),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, v := range verifiers {
			c, err := v.Verify(token)
			if err == nil {
				if c.UserID == "" || checkIdentity(c.UserID, c.DeviceID, c.Name) != "" {
					t.Fatalf("accepted invalid claims %+v", c)
				}
				continue
			}
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, ErrUnauthorized) || te.Reason == nil || err.Error() == "" {
				t.Fatalf("error %#v breaks the contract", err)
			}
			// Messages hold no '.', so a dotted input found in one was copied.
			if len(token) >= 8 && strings.Contains(token, ".") && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q contains the token", err)
			}
		}
	})
}
