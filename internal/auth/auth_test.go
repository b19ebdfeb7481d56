package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/clock"
)

var (
	secret = []byte("0123456789abcdef0123456789abcdef")
	start  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// keys are one private key of each kind a token may be signed with.
type keys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func newKeys(t testing.TB) keys {
	t.Helper()
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, d, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return keys{rsa: r, ec: e, ed: d}
}

// pemOf encodes the public half of k as a PUBLIC KEY block, with a kid
// header when kid is not empty.
func pemOf(t testing.TB, k crypto.Signer, kid string) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	require.NoError(t, err)
	b := &pem.Block{Type: "PUBLIC KEY", Bytes: der}
	if kid != "" {
		b.Headers = map[string]string{"kid": kid}
	}
	return string(pem.EncodeToMemory(b))
}

// jwkOf is the public JWK of k.
func jwkOf(k crypto.Signer, kid string) map[string]string {
	enc := base64.RawURLEncoding.EncodeToString
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PrivateKey:
		x, y := make([]byte, 32), make([]byte, 32)
		k.X.FillBytes(x)
		k.Y.FillBytes(y)
		return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": enc(x), "y": enc(y)}
	case ed25519.PrivateKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(k.Public().(ed25519.PublicKey))}
	}
	panic("unknown key")
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
}

func jwksOf(t testing.TB, ks ...map[string]string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": ks})
	require.NoError(t, err)
	return string(b)
}

// claims are valid claims for player p1 of stream s, for an hour from
// start.
func claims(edit ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "p1", "stream": "s", "exp": start.Add(time.Hour).Unix(), "iat": start.Unix()}
	for _, e := range edit {
		e(c)
	}
	return c
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// signHeader signs claims() with a header of any value.
func signHeader(t testing.TB, m jwt.SigningMethod, key any, name string, value any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims())
	tok.Header[name] = value
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// unsigned is a token with alg "none".
func unsigned(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	return s
}

func TestVerify(t *testing.T) {
	k := newKeys(t)
	other := newKeys(t)
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "keys.pem")
	rsaPEM := pemOf(t, k.rsa, "")
	writeFile(t, pemFile, rsaPEM+pemOf(t, k.ec, "ec1")+pemOf(t, k.ed, ""))
	fake := clock.NewFake(start)
	both, err := auth.New(auth.Config{Secret: secret, PublicKeys: pemFile, Clock: fake})
	require.NoError(t, err)
	hsOnly, err := auth.New(auth.Config{Secret: secret, Clock: fake})
	require.NoError(t, err)
	keysOnly, err := auth.New(auth.Config{PublicKeys: pemFile, Clock: fake})
	require.NoError(t, err)
	withAud, err := auth.New(auth.Config{Secret: secret, Audience: "game", Clock: fake})
	require.NoError(t, err)

	tests := []struct {
		name string
		v    *auth.Verifier
		give string
		want error
	}{
		{name: "HS256", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(), "")},
		{name: "HS256 with a kid", v: hsOnly, give: sign(t, jwt.SigningMethodHS256, secret, claims(), "any")},
		{name: "RS256", v: both, give: sign(t, jwt.SigningMethodRS256, k.rsa, claims(), "")},
		{name: "ES256 by its kid", v: keysOnly, give: sign(t, jwt.SigningMethodES256, k.ec, claims(), "ec1")},
		{name: "ES256 without a kid", v: keysOnly, give: sign(t, jwt.SigningMethodES256, k.ec, claims(), "")},
		{name: "EdDSA", v: keysOnly, give: sign(t, jwt.SigningMethodEdDSA, k.ed, claims(), "")},
		{name: "audience", v: withAud, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", "game"} }), "")},
		{name: "16 audiences", v: withAud, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = strings.Split(strings.Repeat("a,", 15)+"game", ",") }), "")},
		{name: "one audience", v: withAud, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = "game" }), "")},
		{name: "a stream prefix", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["stream"] = "s*" }), "")},
		{name: "spectator", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["role"] = "spectator" }), "")},
		{name: "exp within the skew", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = start.Add(-29 * time.Second).Unix() }), "")},
		{name: "claims of almost 2 KiB", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", auth.MaxSigningInputLen*3/4-150) }), "")},
		{name: "nbf within the skew", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["nbf"] = start.Add(29 * time.Second).Unix() }), "")},

		{name: "alg none", v: both, give: unsigned(t, claims()), want: auth.ErrInvalid},
		{name: "HS256 keyed with the RSA public key", v: keysOnly, give: sign(t, jwt.SigningMethodHS256, []byte(rsaPEM), claims(), ""), want: auth.ErrInvalid},
		{name: "HS256 keyed with the RSA public key, secret set", v: both, give: sign(t, jwt.SigningMethodHS256, []byte(rsaPEM), claims(), ""), want: auth.ErrInvalid},
		{name: "HS256 with public keys only", v: keysOnly, give: sign(t, jwt.SigningMethodHS256, secret, claims(), ""), want: auth.ErrInvalid},
		{name: "RS256 with a secret only", v: hsOnly, give: sign(t, jwt.SigningMethodRS256, k.rsa, claims(), ""), want: auth.ErrInvalid},
		{name: "HS512", v: both, give: sign(t, jwt.SigningMethodHS512, secret, claims(), ""), want: auth.ErrInvalid},
		{name: "RS512", v: both, give: sign(t, jwt.SigningMethodRS512, k.rsa, claims(), ""), want: auth.ErrInvalid},
		{name: "PS256", v: both, give: sign(t, jwt.SigningMethodPS256, k.rsa, claims(), ""), want: auth.ErrInvalid},
		{name: "wrong secret", v: both, give: sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), claims(), ""), want: auth.ErrInvalid},
		{name: "unknown RSA key", v: both, give: sign(t, jwt.SigningMethodRS256, other.rsa, claims(), ""), want: auth.ErrInvalid},
		{name: "unknown kid", v: keysOnly, give: sign(t, jwt.SigningMethodES256, k.ec, claims(), "ec2"), want: auth.ErrInvalid},
		{name: "kid of another algorithm", v: keysOnly, give: sign(t, jwt.SigningMethodEdDSA, k.ed, claims(), "ec1"), want: auth.ErrInvalid},
		{name: "kid not a string", v: keysOnly, give: signHeader(t, jwt.SigningMethodES256, k.ec, "kid", 1), want: auth.ErrInvalid},
		{name: "a crit header", v: both, give: signHeader(t, jwt.SigningMethodHS256, secret, "crit", []string{"exp"}), want: auth.ErrInvalid},
		{name: "malformed", v: both, give: "a.b.c", want: auth.ErrInvalid},
		{name: "empty", v: both, give: "", want: auth.ErrInvalid},
		{name: "too long", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", auth.MaxTokenLen) }), ""), want: auth.ErrInvalid},
		{name: "signature altered", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(), "") + "A", want: auth.ErrInvalid},
		{name: "expired", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = start.Add(-31 * time.Second).Unix() }), ""), want: auth.ErrExpired},
		{name: "not yet valid", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["nbf"] = start.Add(31 * time.Second).Unix() }), ""), want: auth.ErrInvalid},
		{name: "issued in the future", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iat"] = start.Add(time.Minute).Unix() }), ""), want: auth.ErrInvalid},
		{name: "no exp", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") }), ""), want: auth.ErrInvalid},
		{name: "no sub", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "sub") }), ""), want: auth.ErrInvalid},
		{name: "sub not a private id", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "a/b" }), ""), want: auth.ErrInvalid},
		{name: "no stream", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "stream") }), ""), want: auth.ErrInvalid},
		{name: "stream not a name", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["stream"] = "s/x" }), ""), want: auth.ErrInvalid},
		{name: "stream a number", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["stream"] = 1 }), ""), want: auth.ErrInvalid},
		{name: "a star inside the stream", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["stream"] = "s*x" }), ""), want: auth.ErrInvalid},
		{name: "role admin", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["role"] = "admin" }), ""), want: auth.ErrInvalid},
		{name: "role empty", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["role"] = "" }), ""), want: auth.ErrInvalid},
		{name: "another audience", v: withAud, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = "other" }), ""), want: auth.ErrInvalid},
		{name: "no audience where one is required", v: withAud, give: sign(t, jwt.SigningMethodHS256, secret, claims(), ""), want: auth.ErrInvalid},
		{name: "an audience not a string", v: withAud, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = []any{"game", 1} }), ""), want: auth.ErrInvalid},
		{name: "an empty audience where one is required", v: withAud, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = []string{} }), ""), want: auth.ErrInvalid},
		{name: "a list of audiences where none is configured", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = []string{"game"} }), ""), want: auth.ErrInvalid},
		{name: "an audience where none is configured", v: both, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = "game" }), ""), want: auth.ErrInvalid},
		{name: "expired and another audience", v: withAud, give: sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = "other"; c["exp"] = start.Add(-time.Hour).Unix() }), ""), want: auth.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := tt.v.Verify(tt.give)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				assert.Nil(t, g)
				if tt.give != "" {
					assert.NotContains(t, err.Error(), tt.give)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "p1", g.Sub)
		})
	}
}

// TestRefusedUnchecked: a token whose header or claims Verify refuses is
// refused without its signature checked, as Inspect refuses it: a stranger
// who forges tokens, with another key, costs a signature check only with
// a known kid of the token's algorithm and claims that could admit.
func TestRefusedUnchecked(t *testing.T) {
	k, forger := newKeys(t), newKeys(t)
	file := filepath.Join(t.TempDir(), "keys.pem")
	writeFile(t, file, pemOf(t, k.rsa, "r")+pemOf(t, k.ec, "e")+pemOf(t, k.ed, "d"))
	v, err := auth.New(auth.Config{PublicKeys: file, Audience: "game", Clock: clock.NewFake(start)})
	require.NoError(t, err)
	forged := func(edit ...func(jwt.MapClaims)) jwt.MapClaims {
		return claims(append([]func(jwt.MapClaims){func(c jwt.MapClaims) { c["aud"] = "game" }}, edit...)...)
	}
	tests := []struct {
		name string
		give string
		want error
	}{
		{name: "expired", give: sign(t, jwt.SigningMethodES256, forger.ec, forged(func(c jwt.MapClaims) { c["exp"] = start.Add(-time.Minute).Unix() }), "e"), want: auth.ErrExpired},
		{name: "not yet valid", give: sign(t, jwt.SigningMethodES256, forger.ec, forged(func(c jwt.MapClaims) { c["nbf"] = start.Add(time.Minute).Unix() }), "e"), want: auth.ErrInvalid},
		{name: "issued in the future", give: sign(t, jwt.SigningMethodEdDSA, forger.ed, forged(func(c jwt.MapClaims) { c["iat"] = start.Add(time.Minute).Unix() }), "d"), want: auth.ErrInvalid},
		{name: "no exp", give: sign(t, jwt.SigningMethodRS256, forger.rsa, forged(func(c jwt.MapClaims) { delete(c, "exp") }), "r"), want: auth.ErrInvalid},
		{name: "another audience", give: sign(t, jwt.SigningMethodRS256, forger.rsa, forged(func(c jwt.MapClaims) { c["aud"] = "other" }), "r"), want: auth.ErrInvalid},
		{name: "sub not a private id", give: sign(t, jwt.SigningMethodES256, forger.ec, forged(func(c jwt.MapClaims) { c["sub"] = "a/b" }), "e"), want: auth.ErrInvalid},
		{name: "role admin", give: sign(t, jwt.SigningMethodES256, forger.ec, forged(func(c jwt.MapClaims) { c["role"] = "admin" }), "e"), want: auth.ErrInvalid},
		{name: "no stream", give: sign(t, jwt.SigningMethodEdDSA, forger.ed, forged(func(c jwt.MapClaims) { delete(c, "stream") }), "d"), want: auth.ErrInvalid},
		{name: "unknown kid", give: sign(t, jwt.SigningMethodES256, forger.ec, forged(), "e2"), want: auth.ErrInvalid},
		{name: "kid of another algorithm", give: sign(t, jwt.SigningMethodEdDSA, forger.ed, forged(), "e"), want: auth.ErrInvalid},
		{name: "an algorithm not accepted", give: sign(t, jwt.SigningMethodHS256, secret, forged(), ""), want: auth.ErrInvalid},
		{name: "PS256", give: sign(t, jwt.SigningMethodPS256, forger.rsa, forged(), "r"), want: auth.ErrInvalid},
		{name: "a crit header", give: signHeader(t, jwt.SigningMethodEdDSA, forger.ed, "crit", []string{"exp"}), want: auth.ErrInvalid},
		{name: "claims not JSON", give: "eyJhbGciOiJFUzI1NiIsImtpZCI6ImUifQ.bm90IGpzb24.c2ln", want: auth.ErrInvalid},
		{name: "too long", give: sign(t, jwt.SigningMethodES256, forger.ec, forged(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", auth.MaxTokenLen) }), "e"), want: auth.ErrInvalid},
		{name: "claims too long", give: sign(t, jwt.SigningMethodES256, forger.ec, forged(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", auth.MaxSigningInputLen) }), "e"), want: auth.ErrInvalid},
		{name: "17 audiences", give: sign(t, jwt.SigningMethodES256, forger.ec, forged(func(c jwt.MapClaims) { c["aud"] = strings.Split(strings.Repeat("a,", 16)+"game", ",") }), "e"), want: auth.ErrInvalid},
		{name: "an audience of many", give: sign(t, jwt.SigningMethodES256, forger.ec, forged(func(c jwt.MapClaims) { c["aud"] = strings.Split(strings.Repeat("a,", 500)+"game", ",") }), "e"), want: auth.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := v.SignatureChecks()
			g, verified, err := v.Inspect(tt.give)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, g)
			assert.False(t, verified)
			g, err = v.Verify(tt.give)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, g)
			assert.Equal(t, before, v.SignatureChecks(), "a signature was checked")
		})
	}

	// Claims that could admit: Inspect tells what, Verify checks the
	// signature, each time for a forgery, once for a valid token.
	for _, tt := range []struct {
		name   string
		key    any
		want   error
		checks int64
	}{
		{name: "forged", key: forger.ec, want: auth.ErrInvalid, checks: 3},
		{name: "valid", key: k.ec, checks: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodES256, tt.key, forged(), "e")
			g, verified, err := v.Inspect(tok)
			require.NoError(t, err)
			assert.False(t, verified, "not verified yet")
			assert.Equal(t, "s", g.Stream)
			before := v.SignatureChecks()
			for range 3 {
				_, err = v.Verify(tok)
				assert.Equal(t, tt.want, err)
			}
			assert.Equal(t, tt.checks, v.SignatureChecks()-before)
			_, verified, err = v.Inspect(tok)
			require.NoError(t, err)
			assert.Equal(t, tt.want == nil, verified, "verified once valid")
		})
	}
}

func TestGrant(t *testing.T) {
	v, err := auth.New(auth.Config{Secret: secret, Clock: clock.NewFake(start)})
	require.NoError(t, err)
	g, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, claims(), ""))
	require.NoError(t, err)
	assert.Equal(t, &auth.Grant{Sub: "p1", Role: auth.RolePlayer, Stream: "s", Expires: start.Add(time.Hour)}, g, "player is the default role")

	tests := []struct {
		stream string
		give   string
		want   bool
	}{
		{stream: "s", give: "s", want: true},
		{stream: "s", give: "s2"},
		{stream: "s", give: "S"},
		{stream: "room-*", give: "room-1", want: true},
		{stream: "room-*", give: "room-", want: true},
		{stream: "room-*", give: "room"},
		{stream: "room-*", give: "xroom-1"},
		{stream: "*", give: "anything", want: true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, (&auth.Grant{Stream: tt.stream}).Admits(tt.give), "%s admits %s", tt.stream, tt.give)
	}
}

// TestExpiry moves the fake clock past a token's exp and its skew.
func TestExpiry(t *testing.T) {
	fake := clock.NewFake(start)
	v, err := auth.New(auth.Config{Secret: secret, Clock: fake})
	require.NoError(t, err)
	tok := sign(t, jwt.SigningMethodHS256, secret, claims(), "")
	_, err = v.Verify(tok)
	require.NoError(t, err)
	fake.Advance(time.Hour + auth.MaxSkew - time.Second)
	_, err = v.Verify(tok)
	require.NoError(t, err, "within the skew past exp, still valid")
	fake.Advance(time.Second)
	_, err = v.Verify(tok)
	require.ErrorIs(t, err, auth.ErrExpired)
}

// TestRotation replaces the keys file as an operator rotating keys does,
// with a reload for each step (SIGHUP).
func TestRotation(t *testing.T) {
	oldK, newK := newKeys(t), newKeys(t)
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, file, jwksOf(t, jwkOf(oldK.rsa, "2026-01")))
	fake := clock.NewFake(start)
	v, err := auth.New(auth.Config{PublicKeys: file, Clock: fake})
	require.NoError(t, err)
	oldTok := sign(t, jwt.SigningMethodRS256, oldK.rsa, claims(), "2026-01")
	newTok := sign(t, jwt.SigningMethodRS256, newK.rsa, claims(), "2026-02")
	verifies := func(tok string) bool { _, err := v.Verify(tok); return err == nil }
	require.True(t, verifies(oldTok))
	require.False(t, verifies(newTok), "the new key is not published yet")

	// Step 1: publish the new key beside the old one.
	writeFile(t, file, jwksOf(t, jwkOf(oldK.rsa, "2026-01"), jwkOf(newK.rsa, "2026-02")))
	n, err := v.Reload()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.True(t, verifies(oldTok))
	assert.True(t, verifies(newTok))

	// Step 2: once the old tokens have expired, retire the old key.
	fake.Advance(30 * time.Minute)
	writeFile(t, file, jwksOf(t, jwkOf(newK.rsa, "2026-02")))
	_, err = v.Reload()
	require.NoError(t, err)
	assert.False(t, verifies(oldTok), "a retired key verifies nothing")
	assert.True(t, verifies(newTok))

	// A broken file keeps the keys in use.
	writeFile(t, file, `{"keys":[{"kty":"RSA","n":"!!"}]}`)
	_, err = v.Reload()
	require.Error(t, err)
	assert.True(t, verifies(newTok))
	fake.Advance(31*time.Minute + auth.MaxSkew)
	_, err = v.Verify(newTok)
	assert.ErrorIs(t, err, auth.ErrExpired)
}

func TestJWKSKinds(t *testing.T) {
	k := newKeys(t)
	file := filepath.Join(t.TempDir(), "jwks.json")
	enc := jwkOf(k.rsa, "enc")
	enc["use"] = "enc"
	ps := jwkOf(k.rsa, "ps")
	ps["alg"] = "PS256"
	writeFile(t, file, jwksOf(t, jwkOf(k.rsa, "r"), jwkOf(k.ec, "e"), jwkOf(k.ed, "d"), enc, ps, map[string]string{"kty": "oct", "k": "c2VjcmV0"}))
	v, err := auth.New(auth.Config{PublicKeys: file, Clock: clock.NewFake(start)})
	require.NoError(t, err)
	for _, tt := range []struct {
		m    jwt.SigningMethod
		key  any
		kid  string
		want bool
	}{
		{m: jwt.SigningMethodRS256, key: k.rsa, kid: "r", want: true},
		{m: jwt.SigningMethodES256, key: k.ec, kid: "e", want: true},
		{m: jwt.SigningMethodEdDSA, key: k.ed, kid: "d", want: true},
		{m: jwt.SigningMethodRS256, key: k.rsa, kid: "enc"},
		{m: jwt.SigningMethodRS256, key: k.rsa, kid: "ps"},
	} {
		_, err := v.Verify(sign(t, tt.m, tt.key, claims(), tt.kid))
		assert.Equal(t, tt.want, err == nil, "kid %s: %v", tt.kid, err)
	}
}

func TestBadKeyFiles(t *testing.T) {
	k := newKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec)
	require.NoError(t, err)
	priv := jwkOf(k.ed, "")
	priv["d"] = "c2VjcmV0"
	offCurve := jwkOf(k.ec, "")
	offCurve["y"] = offCurve["x"]
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "a private key", give: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})), want: "public keys only"},
		{name: "a private JWK", give: jwksOf(t, priv), want: "private key"},
		{name: "RSA of 1024 bits", give: pemOf(t, small, ""), want: "at least 2048"},
		{name: "P-384", give: pemOf(t, p384, ""), want: "P-256"},
		{name: "a point off the curve", give: jwksOf(t, offCurve), want: "not a point"},
		{name: "nothing usable", give: jwksOf(t, map[string]string{"kty": "oct", "k": "c2VjcmV0"}), want: "no RS256"},
		{name: "empty", give: "", want: "no RS256"},
		{name: "garbage", give: "hello", want: "neither PEM"},
		{name: "bad JSON", give: "{", want: "not a JWKS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "keys")
			writeFile(t, file, tt.give)
			_, err := auth.New(auth.Config{PublicKeys: file})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err = auth.New(auth.Config{Secret: []byte("short")})
	assert.ErrorContains(t, err, "at least 32 bytes")
	_, err = auth.New(auth.Config{})
	assert.Error(t, err)
	_, err = auth.New(auth.Config{PublicKeys: filepath.Join(t.TempDir(), "missing")})
	assert.Error(t, err)
}

// BenchmarkVerify is the cost of admitting one request, by algorithm:
// with a token seen before, and with a new one.
func BenchmarkVerify(b *testing.B) {
	k := newKeys(b)
	file := filepath.Join(b.TempDir(), "keys.pem")
	writeFile(b, file, pemOf(b, k.rsa, "")+pemOf(b, k.ec, "")+pemOf(b, k.ed, ""))
	v, err := auth.New(auth.Config{Secret: secret, PublicKeys: file, Clock: clock.NewFake(start)})
	require.NoError(b, err)
	for _, tt := range []struct {
		name string
		m    jwt.SigningMethod
		key  any
	}{
		{"HS256", jwt.SigningMethodHS256, secret},
		{"RS256", jwt.SigningMethodRS256, k.rsa},
		{"ES256", jwt.SigningMethodES256, k.ec},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed},
	} {
		tok := sign(b, tt.m, tt.key, claims(), "")
		b.Run(tt.name+"/again", func(b *testing.B) { // the same token: from the cache
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tt.name+"/new", func(b *testing.B) { // a token not seen: its signature checked
			toks := make([]string, b.N)
			for i := range toks {
				toks[i] = sign(b, tt.m, tt.key, claims(func(c jwt.MapClaims) { c["jti"] = strconv.Itoa(i) }), "")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := v.Verify(toks[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInspect is what a stranger's token costs before its signature
// is checked, by its claims: a stream token's, and the costliest JSON to
// decode that MaxSigningInputLen lets through.
func BenchmarkInspect(b *testing.B) {
	k := newKeys(b)
	file := filepath.Join(b.TempDir(), "keys.pem")
	writeFile(b, file, pemOf(b, k.rsa, "r"))
	v, err := auth.New(auth.Config{PublicKeys: file, Audience: "game", Clock: clock.NewFake(start)})
	require.NoError(b, err)
	enc := base64.RawURLEncoding.EncodeToString
	head := enc([]byte(`{"alg":"RS256","kid":"r","typ":"JWT"}`))
	for _, tt := range []struct {
		name, claims string
		want         error
	}{
		{name: "stream-token", claims: `{"sub":"p1","stream":"s","aud":"game","exp":1767229200}`},
		{name: "audiences", claims: `{"sub":"p1","stream":"s","exp":1767229200,"aud":["` + strings.Repeat(`a","`, 340) + `game"]}`, want: auth.ErrInvalid},
		{name: "numbers", claims: `{"sub":"p1","stream":"s","aud":"game","exp":1767229200,"x":[` + strings.Repeat(`1e300,`, 225) + `1]}`},
		{name: "keys", claims: `{"sub":"p1","stream":"s","aud":"game","exp":1767229200,` + strings.Repeat(`"a":1,`, 225) + `"b":1}`},
	} {
		tok := head + "." + enc([]byte(tt.claims)) + "." + enc(make([]byte, 256))
		require.LessOrEqual(b, strings.LastIndexByte(tok, '.'), auth.MaxSigningInputLen)
		b.Run("claims="+tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := v.Inspect(tok); err != tt.want {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCachedGrantIsACopy: a handler that changes the grant it was given
// changes nobody else's.
func TestCachedGrantIsACopy(t *testing.T) {
	v, err := auth.New(auth.Config{Secret: secret, Clock: clock.NewFake(start)})
	require.NoError(t, err)
	tok := sign(t, jwt.SigningMethodHS256, secret, claims(), "")
	g, err := v.Verify(tok)
	require.NoError(t, err)
	g.Stream, g.Role = "*", auth.RolePlayer
	again, err := v.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, "s", again.Stream)
}
