package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeyConfig configures a [Verifier]. At most one of Secret, PublicKeyFile and
// JWKSFile may be set; with none, the verifier runs with [DevelopmentSecret].
type KeyConfig struct {
	// Secret is the HS256 shared secret (SWITCHBOARD_JWT_SECRET).
	Secret string
	// PublicKeyFile is the path of a PEM RSA or EC P-256 public key, or of
	// a certificate holding one (SWITCHBOARD_JWT_PUBLIC_KEY).
	PublicKeyFile string
	// JWKSFile is the path of a JWK Set (SWITCHBOARD_JWT_JWKS).
	JWKSFile string
	// Issuer, when set, must equal the token's "iss".
	Issuer string
	// Audience, when set, must be among the token's "aud".
	Audience string
	// ClockSkew is the tolerance for exp, nbf and iat; zero means
	// DefaultClockSkew. Negative is an error.
	ClockSkew time.Duration
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// Verifier verifies member tokens. It is safe for concurrent use; Reload may
// run while tokens are being verified.
type Verifier struct {
	cfg  KeyConfig
	dev  bool
	keys atomic.Pointer[keySet]

	// reloadMu serialises reloads and guards lastSum.
	reloadMu sync.Mutex
	// lastSum is the SHA-256 of the key file content last read, so that
	// Watch reloads (and reports errors) only when the file changes.
	lastSum [sha256.Size]byte
}

// keySet is one immutable generation of verification keys. Reload builds a
// new one and swaps it in atomically.
type keySet struct {
	algs   []string
	secret []byte               // HS256
	single *publicKey           // PEM public key: any kid
	byKID  map[string]publicKey // JWKS
	parser *jwt.Parser
}

// NewVerifier builds a verifier from cfg, reading the key file if any. It
// refuses a secret shorter than MinSecretBytes and the development secret
// given as a real one. Errors match ErrKeyConfig.
func NewVerifier(cfg KeyConfig) (*Verifier, error) {
	sources := 0
	for _, s := range []string{cfg.Secret, cfg.PublicKeyFile, cfg.JWKSFile} {
		if s != "" {
			sources++
		}
	}
	if sources > 1 {
		return nil, fmt.Errorf("%w: set only one of SWITCHBOARD_JWT_SECRET, SWITCHBOARD_JWT_PUBLIC_KEY and SWITCHBOARD_JWT_JWKS", ErrKeyConfig)
	}
	if cfg.Secret == DevelopmentSecret {
		return nil, fmt.Errorf("%w: SWITCHBOARD_JWT_SECRET is the published development key; choose a secret of your own", ErrKeyConfig)
	}
	if cfg.Secret != "" && len(cfg.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("%w: SWITCHBOARD_JWT_SECRET is shorter than %d bytes; generate one with `openssl rand -hex 32`", ErrKeyConfig, MinSecretBytes)
	}
	if cfg.ClockSkew < 0 {
		return nil, fmt.Errorf("%w: the clock skew must not be negative", ErrKeyConfig)
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, dev: sources == 0}
	switch {
	case v.dev:
		v.keys.Store(newKeySet(&keySet{secret: []byte(DevelopmentSecret)}))
	case cfg.Secret != "":
		v.keys.Store(newKeySet(&keySet{secret: []byte(cfg.Secret)}))
	default:
		if err := v.Reload(); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// newKeySet fills in the accepted algorithms and the parser of ks.
func newKeySet(ks *keySet) *keySet {
	switch {
	case ks.secret != nil:
		ks.algs = []string{AlgHS256}
	case ks.single != nil:
		ks.algs = []string{ks.single.alg}
	default:
		for _, k := range ks.byKID {
			if !slices.Contains(ks.algs, k.alg) {
				ks.algs = append(ks.algs, k.alg)
			}
		}
		slices.Sort(ks.algs)
	}
	// Claims are validated by Verify itself (exact reasons, one clock);
	// the parser checks structure, algorithm and signature.
	ks.parser = jwt.NewParser(jwt.WithValidMethods(ks.algs), jwt.WithoutClaimsValidation())
	return ks
}

// Development reports whether the verifier runs with the development key,
// that is whether no key was configured.
func (v *Verifier) Development() bool { return v.dev }

// Algorithms returns the algorithms the current keys accept.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.keys.Load().algs) }

// Warnings returns sentences for the start-up log about an insecure key
// configuration (today: the development key). Empty when fine.
func (v *Verifier) Warnings() []string {
	if !v.dev {
		return nil
	}
	return []string{"no JWT key is configured: running with the published development key, with which anyone can sign in as anyone; " +
		"set SWITCHBOARD_JWT_SECRET, SWITCHBOARD_JWT_PUBLIC_KEY or SWITCHBOARD_JWT_JWKS in production"}
}

// keyFile returns the configured key file path, or "".
func (v *Verifier) keyFile() string {
	if v.cfg.JWKSFile != "" {
		return v.cfg.JWKSFile
	}
	return v.cfg.PublicKeyFile
}

// Reload re-reads the public key or JWKS file and swaps in its keys; tokens
// verified afterwards use them. On error the previous keys stay in use, so a
// half-written file never locks everyone out. With a secret or the
// development key it does nothing. Errors match ErrKeyConfig.
func (v *Verifier) Reload() error {
	v.reloadMu.Lock()
	defer v.reloadMu.Unlock()
	return v.reloadLocked(false)
}

// reloadLocked reads the key file, parses it and swaps the keys in; with
// onlyIfChanged, only when its content differs from the last read.
func (v *Verifier) reloadLocked(onlyIfChanged bool) error {
	path := v.keyFile()
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrKeyConfig, path, err)
	}
	sum := sha256.Sum256(data)
	if onlyIfChanged && sum == v.lastSum {
		return nil
	}
	v.lastSum = sum
	ks := &keySet{}
	if v.cfg.JWKSFile != "" {
		if ks.byKID, err = parseJWKS(data); err != nil {
			return fmt.Errorf("%w: JWKS %s: %w", ErrKeyConfig, path, err)
		}
	} else {
		pk, err := parsePublicKeyPEM(data)
		if err != nil {
			return fmt.Errorf("%w: public key %s: %w", ErrKeyConfig, path, err)
		}
		ks.single = &pk
	}
	v.keys.Store(newKeySet(ks))
	return nil
}

// Watch checks the key file every interval until ctx is done and reloads it
// when its content changes, so keys rotate by replacing the file. A file
// that cannot be read or parsed is reported once per distinct content
// through onError (which may be nil) and the previous keys stay in use. With
// a secret or the development key Watch returns at once.
func (v *Verifier) Watch(ctx context.Context, interval time.Duration, onError func(error)) {
	if v.keyFile() == "" || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v.reloadMu.Lock()
		err := v.reloadLocked(true)
		v.reloadMu.Unlock()
		switch {
		case err == nil:
			lastErr = ""
		case err.Error() != lastErr:
			// A read error does not update lastSum, so it is compared by
			// message to report it once.
			lastErr = err.Error()
			if onError != nil {
				onError(err)
			}
		}
	}
}

// tokenClaims is the JSON shape of the claims Switchboard reads.
type tokenClaims struct {
	jwt.RegisteredClaims
	DeviceID string `json:"did,omitempty"`
	Name     string `json:"name,omitempty"`
}

// Verify checks token and returns its claims. Every error matches
// ErrUnauthorized and one reason sentinel; its message never contains the
// token.
func (v *Verifier) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, refuse(ErrNoToken, "no token was given", nil)
	}
	if len(token) > MaxTokenBytes {
		return Claims{}, refuse(ErrMalformed, fmt.Sprintf("the token is longer than %d bytes", MaxTokenBytes), nil)
	}
	ks := v.keys.Load()
	var c tokenClaims
	parsed, err := ks.parser.ParseWithClaims(token, &c, ks.keyFunc)
	if err != nil {
		return Claims{}, ks.classify(parsed, err)
	}
	if err := v.checkClaims(&c); err != nil {
		return Claims{}, err
	}
	return Claims{
		UserID:    c.Subject,
		DeviceID:  c.DeviceID,
		Name:      c.Name,
		ExpiresAt: c.ExpiresAt.UTC(),
	}, nil
}

// keyFunc selects the verification key for a token whose "alg" the parser
// has already checked against ks.algs.
func (ks *keySet) keyFunc(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 4.1.11: unknown critical extensions must be refused.
		return nil, refuse(ErrMalformed, "the token uses critical header extensions this server does not support", nil)
	}
	alg := t.Method.Alg()
	if ks.secret != nil {
		if alg != AlgHS256 {
			return nil, refuse(ErrAlgorithm, "the token is signed with an algorithm this server does not accept", nil)
		}
		return ks.secret, nil
	}
	var (
		k  publicKey
		ok bool
	)
	if ks.single != nil {
		k, ok = *ks.single, true
	} else {
		kid := ""
		if raw, present := t.Header["kid"]; present {
			s, isString := raw.(string)
			if !isString {
				return nil, refuse(ErrMalformed, "the token key id (kid) is not a string", nil)
			}
			kid = s
		}
		k, ok = ks.byKID[kid]
		if !ok && kid == "" && len(ks.byKID) == 1 {
			// A single-key set also serves tokens without "kid".
			for _, only := range ks.byKID {
				k, ok = only, true
			}
		}
	}
	if !ok {
		return nil, refuse(ErrUnknownKey, "the token key id (kid) does not name a key of this server", nil)
	}
	if alg != k.alg {
		return nil, refuse(ErrAlgorithm, "the token is signed with an algorithm this server does not accept", nil)
	}
	return k.key, nil
}

// classify turns a parser error into a TokenError.
func (ks *keySet) classify(t *jwt.Token, err error) *TokenError {
	var te *TokenError
	switch {
	case errors.As(err, &te):
		return te
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse(ErrMalformed, "the token is malformed", err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// Unknown or missing "alg".
		return refuse(ErrAlgorithm, "the token is signed with an algorithm this server does not accept", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if t != nil && t.Method != nil && !slices.Contains(ks.algs, t.Method.Alg()) {
			return refuse(ErrAlgorithm, "the token is signed with an algorithm this server does not accept", err)
		}
		return refuse(ErrSignature, "the token signature is invalid", err)
	}
	return refuse(ErrMalformed, "the token is malformed", err)
}

// checkClaims validates time, issuer, audience and identity claims.
func (v *Verifier) checkClaims(c *tokenClaims) *TokenError {
	now := v.cfg.Now()
	skew := v.cfg.ClockSkew
	switch {
	case c.ExpiresAt == nil:
		return refuse(ErrMissingClaim, "the token has no expiry time (exp)", nil)
	case !now.Before(c.ExpiresAt.Add(skew)):
		return refuse(ErrExpired, "the token has expired", nil)
	case c.NotBefore != nil && now.Add(skew).Before(c.NotBefore.Time):
		return refuse(ErrNotYetValid, "the token is not valid yet (nbf)", nil)
	case c.IssuedAt != nil && now.Add(skew).Before(c.IssuedAt.Time):
		return refuse(ErrNotYetValid, "the token is issued in the future (iat)", nil)
	case v.cfg.Issuer != "" && c.Issuer != v.cfg.Issuer:
		return refuse(ErrIssuer, "the token issuer (iss) is not accepted", nil)
	case v.cfg.Audience != "" && !slices.Contains(c.Audience, v.cfg.Audience):
		return refuse(ErrAudience, "the token audience (aud) is not accepted", nil)
	}
	if msg := checkIdentity(c.Subject, c.DeviceID, c.Name); msg != "" {
		reason := ErrInvalidClaim
		if c.Subject == "" {
			reason = ErrMissingClaim
		}
		return refuse(reason, msg, nil)
	}
	return nil
}
