package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// minRSABits is the smallest RSA modulus accepted, for verification and
// signing alike.
const minRSABits = 2048

// publicKey is a verification key with the one algorithm it accepts.
type publicKey struct {
	alg string
	key crypto.PublicKey
}

// algFor returns the algorithm a public key accepts, or an error for key
// types and sizes Switchboard does not support.
func algFor(k crypto.PublicKey) (string, error) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits is too small (minimum %d)", k.N.BitLen(), minRSABits)
		}
		return AlgRS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("EC key on curve %s is not supported (only P-256, for ES256)", k.Curve.Params().Name)
		}
		return AlgES256, nil
	default:
		return "", fmt.Errorf("key type %T is not supported (RSA or EC P-256 only)", k)
	}
}

// parsePublicKeyPEM parses the first PEM block of data: a PKIX "PUBLIC KEY",
// a PKCS #1 "RSA PUBLIC KEY" or a "CERTIFICATE" whose key is used.
func parsePublicKeyPEM(data []byte) (publicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return publicKey{}, errors.New("no PEM block found")
	}
	var (
		key crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		if isPrivateKeyBlock(block.Type) {
			return publicKey{}, fmt.Errorf("PEM block %q holds a private key; the gateway needs only the public key", block.Type)
		}
		return publicKey{}, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return publicKey{}, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	alg, err := algFor(key)
	if err != nil {
		return publicKey{}, err
	}
	return publicKey{alg: alg, key: key}, nil
}

func isPrivateKeyBlock(t string) bool {
	return t == "PRIVATE KEY" || t == "RSA PRIVATE KEY" || t == "EC PRIVATE KEY"
}

// parsePrivateKeyPEM parses the first PEM block of data: PKCS #8 "PRIVATE
// KEY", PKCS #1 "RSA PRIVATE KEY" or SEC 1 "EC PRIVATE KEY". It returns the
// key and the algorithm it signs with.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", errors.New("no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("parse %s: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("private key type %T is not supported", key)
	}
	alg, err := algFor(signer.Public())
	if err != nil {
		return nil, "", err
	}
	return signer, alg, nil
}

// jwk is the subset of RFC 7517/7518 members Switchboard reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	// RSA
	N string `json:"n"`
	E string `json:"e"`
	// EC
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a JWK Set into verification keys by "kid".
//
// Keys that are not for signatures ("use" other than "sig"), of a type other
// than RSA or EC (RFC 7517 asks to ignore unknown types; symmetric "oct"
// keys are deliberately ignored: HS256 uses the configured secret), or whose
// "alg" names another algorithm are skipped. A malformed RSA or EC key, a
// duplicate "kid" or a set without any usable key is an error, so that a
// broken file is noticed instead of silently shrinking the key set.
func parseJWKS(data []byte) (map[string]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	keys := make(map[string]publicKey, len(set.Keys))
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var (
			pk  publicKey
			err error
		)
		switch k.Kty {
		case "RSA":
			if k.Alg != "" && k.Alg != AlgRS256 {
				continue
			}
			pk, err = rsaFromJWK(k)
		case "EC":
			if k.Alg != "" && k.Alg != AlgES256 {
				continue
			}
			if k.Crv != "P-256" {
				continue
			}
			pk, err = ecFromJWK(k)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("key %d: duplicate kid %q", i, k.Kid)
		}
		keys[k.Kid] = pk
	}
	if len(keys) == 0 {
		return nil, errors.New("the JWKS holds no usable RS256 or ES256 signing key")
	}
	return keys, nil
}

func rsaFromJWK(k jwk) (publicKey, error) {
	n, err := b64int(k.N)
	if err != nil {
		return publicKey{}, fmt.Errorf("n: %w", err)
	}
	e, err := b64int(k.E)
	if err != nil {
		return publicKey{}, fmt.Errorf("e: %w", err)
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return publicKey{}, errors.New("e: unsupported public exponent")
	}
	key := &rsa.PublicKey{N: n, E: int(e.Int64())}
	if _, err := algFor(key); err != nil {
		return publicKey{}, err
	}
	return publicKey{alg: AlgRS256, key: key}, nil
}

func ecFromJWK(k jwk) (publicKey, error) {
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil {
		return publicKey{}, fmt.Errorf("x: %w", err)
	}
	y, err := base64.RawURLEncoding.DecodeString(k.Y)
	if err != nil {
		return publicKey{}, fmt.Errorf("y: %w", err)
	}
	if len(x) != 32 || len(y) != 32 {
		return publicKey{}, errors.New("x and y must be 32 bytes each for P-256")
	}
	point := make([]byte, 0, 65)
	point = append(point, 4)
	point = append(point, x...)
	point = append(point, y...)
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return publicKey{}, err
	}
	return publicKey{alg: AlgES256, key: key}, nil
}

// b64int decodes an unpadded base64url big-endian unsigned integer.
func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return new(big.Int).SetBytes(b), nil
}
