package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// maxKeysFile is the largest file of public keys read.
const maxKeysFile = 1 << 20

// minRSABits is the smallest RSA key accepted.
const minRSABits = 2048

// publicKey is one key of a keySet: the algorithm it verifies, and its
// kid when it has one.
type publicKey struct {
	kid string
	alg string
	key crypto.PublicKey
}

// keySet is the public keys of a file, as read once.
type keySet struct {
	keys []publicKey
}

func (ks *keySet) byKid(kid, alg string) (crypto.PublicKey, bool) {
	for _, k := range ks.keys {
		if k.kid == kid && k.alg == alg {
			return k.key, true
		}
	}
	return nil, false
}

func (ks *keySet) byAlg(alg string) jwt.VerificationKeySet {
	var set jwt.VerificationKeySet
	for _, k := range ks.keys {
		if k.alg == alg {
			set.Keys = append(set.Keys, k.key)
		}
	}
	return set
}

// loadKeys reads a file of public keys: a JWKS document (RFC 7517,
// {"keys":[…]}), or PEM blocks of PUBLIC KEY (PKIX), RSA PUBLIC KEY (PKCS
// #1) or CERTIFICATE, each of which may carry a "kid" header. RSA keys
// (RS256) of at least 2048 bits, P-256 keys (ES256) and Ed25519 keys
// (EdDSA) are accepted; a JWK of another type or algorithm, or for
// encryption, is skipped. A file holding a private key, or no key to use,
// is an error.
func loadKeys(path string) (*keySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth public keys: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("auth public keys: %w", err)
	}
	if len(data) > maxKeysFile {
		return nil, fmt.Errorf("auth public keys: %s is larger than %d bytes", path, maxKeysFile)
	}
	var ks *keySet
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		ks, err = parseJWKS(t)
	} else {
		ks, err = parsePEM(data)
	}
	if err != nil {
		return nil, fmt.Errorf("auth public keys in %s: %w", path, err)
	}
	if len(ks.keys) == 0 {
		return nil, fmt.Errorf("auth public keys: %s holds no RS256, ES256 or EdDSA public key", path)
	}
	return ks, nil
}

func parsePEM(data []byte) (*keySet, error) {
	ks := &keySet{}
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var key any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("block %d is a %s: give public keys only", n, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n, err)
		}
		k, err := newPublicKey(b.Headers["kid"], key)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n, err)
		}
		ks.keys = append(ks.keys, k)
	}
	if len(bytes.TrimSpace(data)) > 0 && len(ks.keys) == 0 {
		return nil, errors.New("neither PEM nor a JWKS document")
	}
	return ks, nil
}

// newPublicKey checks that key may verify tokens, and finds its algorithm.
func newPublicKey(kid string, key any) (publicKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return publicKey{}, fmt.Errorf("an RSA key of %d bits: at least %d are needed", k.N.BitLen(), minRSABits)
		}
		return publicKey{kid: kid, alg: algRS256, key: k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return publicKey{}, fmt.Errorf("an ECDSA key on %s: ES256 needs P-256", k.Curve.Params().Name)
		}
		return publicKey{kid: kid, alg: algES256, key: k}, nil
	case ed25519.PublicKey:
		return publicKey{kid: kid, alg: algEdDSA, key: k}, nil
	}
	return publicKey{}, fmt.Errorf("a key of type %T: RSA, ECDSA P-256 or Ed25519 are accepted", key)
}

// jwk is the part of a JSON Web Key (RFC 7517, 7518, 8037) read here.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

func parseJWKS(data []byte) (*keySet, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	ks := &keySet{}
	for i, j := range doc.Keys {
		if j.D != "" {
			return nil, fmt.Errorf("keys[%d] is a private key: give public keys only", i)
		}
		want, ok := map[string]string{"RSA": algRS256, "EC": algES256, "OKP": algEdDSA}[j.Kty]
		if !ok || (j.Use != "" && j.Use != "sig") || (j.Alg != "" && j.Alg != want) {
			continue // not a key for us: another kind, or for encryption
		}
		key, err := j.publicKey()
		if err != nil {
			return nil, fmt.Errorf("keys[%d] (kid %q): %w", i, j.Kid, err)
		}
		k, err := newPublicKey(j.Kid, key)
		if err != nil {
			return nil, fmt.Errorf("keys[%d] (kid %q): %w", i, j.Kid, err)
		}
		ks.keys = append(ks.keys, k)
	}
	return ks, nil
}

// publicKey decodes the key of j, whose kty is RSA, EC or OKP.
func (j jwk) publicKey() (any, error) {
	b64 := func(name, s string) ([]byte, error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%s is not base64url", name)
		}
		return b, nil
	}
	switch j.Kty {
	case "RSA":
		n, err := b64("n", j.N)
		if err != nil {
			return nil, err
		}
		e, err := b64("e", j.E)
		if err != nil {
			return nil, err
		}
		if len(e) > 4 {
			return nil, errors.New("e is too large")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		if exp < 3 || exp%2 == 0 {
			return nil, errors.New("e is not a valid RSA exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
	case "EC":
		if j.Crv != "P-256" {
			return nil, fmt.Errorf("crv %q: ES256 needs P-256", j.Crv)
		}
		x, err := b64("x", j.X)
		if err != nil {
			return nil, err
		}
		y, err := b64("y", j.Y)
		if err != nil {
			return nil, err
		}
		if len(x) != 32 || len(y) != 32 {
			return nil, errors.New("x and y must be 32 bytes each")
		}
		// crypto/ecdh checks that the point is on the curve.
		if _, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, x...), y...)); err != nil {
			return nil, errors.New("x and y are not a point of P-256")
		}
		return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
	default: // OKP
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("crv %q: EdDSA needs Ed25519", j.Crv)
		}
		x, err := b64("x", j.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("x must be %d bytes", ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), nil
	}
}
