package auth

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTokenTTL is the lifetime of tokens printed by TokenCommand when
// --ttl is not given.
const DefaultTokenTTL = 24 * time.Hour

// ErrMint is matched by every error of Mint and TokenCommand about their
// input (as opposed to flag syntax errors).
var ErrMint = errors.New("cannot mint token")

// SigningKey says how Mint signs. With neither Secret nor PrivateKeyFile it
// signs with DevelopmentSecret.
type SigningKey struct {
	// Secret signs HS256 (SWITCHBOARD_JWT_SECRET).
	Secret string
	// PrivateKeyFile is the path of a PEM RSA (RS256) or EC P-256 (ES256)
	// private key (SWITCHBOARD_JWT_PRIVATE_KEY). It is for minting tools
	// and tests only: a gateway needs only the public key.
	PrivateKeyFile string
	// KeyID, when set, becomes the "kid" header (needed for a JWKS with
	// several keys).
	KeyID string
	// Issuer and Audience, when set, become "iss" and "aud", so that the
	// token passes a verifier configured with them.
	Issuer   string
	Audience string
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// Development reports whether k signs with the development key.
func (k SigningKey) Development() bool {
	return k.Secret == "" && k.PrivateKeyFile == ""
}

// Mint returns a token for c.UserID, c.DeviceID and c.Name that expires ttl
// from now ("iat" is now; c.ExpiresAt is ignored). The identity claims must
// satisfy the limits Verify enforces. Errors match ErrMint.
func Mint(key SigningKey, c Claims, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("%w: the lifetime must be positive", ErrMint)
	}
	if msg := checkIdentity(c.UserID, c.DeviceID, c.Name); msg != "" {
		return "", fmt.Errorf("%w: %s", ErrMint, msg)
	}
	if key.Secret != "" && key.PrivateKeyFile != "" {
		return "", fmt.Errorf("%w: give either a secret or a private key, not both", ErrMint)
	}
	now := time.Now
	if key.Now != nil {
		now = key.Now
	}
	t := now()
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.UserID,
			Issuer:    key.Issuer,
			IssuedAt:  jwt.NewNumericDate(t),
			ExpiresAt: jwt.NewNumericDate(t.Add(ttl)),
		},
		DeviceID: c.DeviceID,
		Name:     c.Name,
	}
	if key.Audience != "" {
		claims.Audience = jwt.ClaimStrings{key.Audience}
	}

	var (
		method jwt.SigningMethod = jwt.SigningMethodHS256
		signer any               = []byte(DevelopmentSecret)
	)
	switch {
	case key.Secret != "":
		signer = []byte(key.Secret)
	case key.PrivateKeyFile != "":
		data, err := os.ReadFile(key.PrivateKeyFile)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrMint, err)
		}
		priv, alg, err := parsePrivateKeyPEM(data)
		if err != nil {
			return "", fmt.Errorf("%w: private key %s: %w", ErrMint, key.PrivateKeyFile, err)
		}
		signer, method = priv, jwt.GetSigningMethod(alg)
	}
	tok := jwt.NewWithClaims(method, claims)
	if key.KeyID != "" {
		tok.Header["kid"] = key.KeyID
	}
	s, err := tok.SignedString(signer)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMint, err)
	}
	return s, nil
}

// TokenCommand implements `switchboard token`: args are the arguments after
// the subcommand name, env reads the environment (os.Getenv), and the token
// is written to out followed by a newline, nothing else, so that
// TOKEN=$(switchboard token --sub alice) works.
//
// Flags: --sub (required), --did, --name, --ttl (default 24h), --kid, and
// --jwt-secret, --jwt-private-key, --jwt-issuer, --jwt-audience, which
// override SWITCHBOARD_JWT_SECRET, SWITCHBOARD_JWT_PRIVATE_KEY,
// SWITCHBOARD_JWT_ISSUER and SWITCHBOARD_JWT_AUDIENCE. The key is the private
// key if given, else the secret, else the development key; when the
// environment configures the gateway with SWITCHBOARD_JWT_PUBLIC_KEY or
// SWITCHBOARD_JWT_JWKS but no private key is given, it refuses, since the
// gateway would refuse a development token. With -h it writes the usage to
// out and returns nil.
func TokenCommand(args []string, env func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("switchboard token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		c    Claims
		key  SigningKey
		ttl  time.Duration
		help strings.Builder
	)
	fs.StringVar(&c.UserID, "sub", "", "user id (required)")
	fs.StringVar(&c.DeviceID, "did", "", "device id")
	fs.StringVar(&c.Name, "name", "", "display name (opaque)")
	fs.DurationVar(&ttl, "ttl", DefaultTokenTTL, "lifetime of the token")
	fs.StringVar(&key.KeyID, "kid", "", "key id header, for a JWKS with several keys")
	// Defaults come from the environment after parsing, so that the usage
	// text never prints a secret.
	fs.StringVar(&key.Secret, "jwt-secret", "", "HS256 secret (default $SWITCHBOARD_JWT_SECRET)")
	fs.StringVar(&key.PrivateKeyFile, "jwt-private-key", "", "PEM RSA or EC P-256 private key file (default $SWITCHBOARD_JWT_PRIVATE_KEY)")
	fs.StringVar(&key.Issuer, "jwt-issuer", "", "iss claim (default $SWITCHBOARD_JWT_ISSUER)")
	fs.StringVar(&key.Audience, "jwt-audience", "", "aud claim (default $SWITCHBOARD_JWT_AUDIENCE)")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(&help, "usage: switchboard token --sub USER [--did DEVICE] [--name NAME] [--ttl 24h] [--kid KID]")
			fs.SetOutput(&help)
			fs.PrintDefaults()
			_, werr := io.WriteString(out, help.String())
			return werr
		}
		return fmt.Errorf("switchboard token: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("switchboard token: unexpected argument %q", fs.Arg(0))
	}
	if c.UserID == "" {
		return fmt.Errorf("%w: --sub is required", ErrMint)
	}
	for _, f := range []struct {
		dst *string
		env string
	}{
		{&key.Secret, "SWITCHBOARD_JWT_SECRET"},
		{&key.PrivateKeyFile, "SWITCHBOARD_JWT_PRIVATE_KEY"},
		{&key.Issuer, "SWITCHBOARD_JWT_ISSUER"},
		{&key.Audience, "SWITCHBOARD_JWT_AUDIENCE"},
	} {
		if *f.dst == "" {
			*f.dst = env(f.env)
		}
	}
	if key.Secret == "" && key.PrivateKeyFile == "" &&
		(env("SWITCHBOARD_JWT_PUBLIC_KEY") != "" || env("SWITCHBOARD_JWT_JWKS") != "") {
		return fmt.Errorf("%w: the gateway verifies with a public key (SWITCHBOARD_JWT_PUBLIC_KEY or SWITCHBOARD_JWT_JWKS); "+
			"give the matching private key with SWITCHBOARD_JWT_PRIVATE_KEY or --jwt-private-key", ErrMint)
	}
	tok, err := Mint(key, c, ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}
