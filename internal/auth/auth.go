// Package auth verifies stream tokens (docs/protocol.md, "Tokens"): JWTs
// that a game's backend signs to admit one player, or one spectator, to a
// stream or to the streams of a prefix. It knows nothing of HTTP; the api
// package finds the token in a request and answers the refusals.
//
// A Verifier is safe for concurrent use; Reload swaps its public keys at
// once, so a token is checked against the old keys or the new, never a mix.
package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
)

// MinSecretLen is the shortest HS256 secret, in bytes: RFC 7518 §3.2
// wants a key at least as long as the hash.
const MinSecretLen = 32

// MaxSkew is the most the clocks of the backend that signs and of the
// server may disagree: exp, nbf and iat are checked this leniently.
const MaxSkew = 30 * time.Second

// MaxTokenLen is the longest token considered, in bytes; a longer one is
// refused before it is decoded.
const MaxTokenLen = 8 << 10

// MaxSigningInputLen is the longest header and claims of a token (its
// base64url part before the signature), in bytes; a token with longer ones
// is refused before they are decoded. A stream token needs a few hundred:
// decoding JSON costs tens of nanoseconds a byte (BenchmarkInspect), spent
// on a stranger's token before its signature can be checked.
const MaxSigningInputLen = 2 << 10

// The roles a token may give (its "role" claim; player when absent).
const (
	RolePlayer    = "player"
	RoleSpectator = "spectator"
)

// The algorithms a token may be signed with: HS256 with the secret, the
// others with a public key of their kind.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

var (
	// ErrInvalid: the token is malformed, its signature, algorithm, key
	// or audience is not accepted, or a claim is missing or wrong.
	ErrInvalid = errors.New("the token is not valid")
	// ErrExpired: the token was valid, and its exp has passed.
	ErrExpired = errors.New("the token has expired")
)

// Grant is what a verified token admits: one player or spectator, to a
// stream or a prefix of streams, until it expires.
type Grant struct {
	// Sub is the player: the private id of the paths it may use.
	Sub string
	// Role is RolePlayer or RoleSpectator.
	Role string
	// Stream is the stream admitted to, or a prefix ending in "*".
	Stream string
	// Expires is the token's exp.
	Expires time.Time
}

// Admits reports whether g admits to the stream name.
func (g *Grant) Admits(name string) bool {
	if prefix, ok := strings.CutSuffix(g.Stream, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return g.Stream == name
}

// Spectator reports whether g admits a spectator, who reads a stream but
// may not post to it nor upload.
func (g *Grant) Spectator() bool { return g.Role == RoleSpectator }

// ValidUntil returns when g's token stops being valid: at its exp plus
// MaxSkew, as jwt's check of exp.
func (g *Grant) ValidUntil() time.Time { return g.Expires.Add(MaxSkew) }

type grantKey struct{}

// NewContext returns ctx carrying g, for the handlers of the request g
// admitted.
func NewContext(ctx context.Context, g *Grant) context.Context {
	return context.WithValue(ctx, grantKey{}, g)
}

// FromContext returns the grant of the request, if a token admitted it;
// with auth off, or on an open stream, there is none.
func FromContext(ctx context.Context) (*Grant, bool) {
	g, ok := ctx.Value(grantKey{}).(*Grant)
	return g, ok
}

// Config configures a Verifier. At least one of Secret and PublicKeys is
// required.
type Config struct {
	// Secret verifies HS256 tokens; at least MinSecretLen bytes. Empty
	// accepts no HS256 token.
	Secret []byte
	// PublicKeys is the path of a file of public keys (PEM or a JWKS
	// document; see loadKeys) that verify RS256, ES256 and EdDSA tokens.
	// Empty accepts none of them.
	PublicKeys string
	// Audience, when set, must be one of a token's "aud"; when empty, a
	// token that names an audience is refused (RFC 7519 §4.1.3).
	Audience string
	// Clock tells the time tokens are checked at. Nil means clock.Real().
	Clock clock.Clock
}

// Validate reports the first invalid setting, if any.
func (c Config) Validate() error {
	switch {
	case len(c.Secret) == 0 && c.PublicKeys == "":
		return errors.New("auth needs a secret or a file of public keys")
	case len(c.Secret) > 0 && len(c.Secret) < MinSecretLen:
		return fmt.Errorf("the auth secret must be at least %d bytes, not %d", MinSecretLen, len(c.Secret))
	}
	return nil
}

// Verifier verifies stream tokens.
type Verifier struct {
	cfg       Config
	algs      []string // the algorithms accepted
	parser    *jwt.Parser
	validator *jwt.Validator         // the parser's checks of claims, for Inspect
	keys      atomic.Pointer[keySet] // nil without PublicKeys
	cache     grantCache
	checks    atomic.Int64 // signatures checked
}

// The bounds of the grants kept: one per token in use (a client polling
// five times a second sends the same token until it renews it), at most
// maxCachedGrants and maxCachedBytes of them, each counting its token, its
// sub and stream and cachedGrantOverhead; tokens longer than
// maxCachedToken are not kept. Some 30 000 RS256 tokens fit.
const (
	maxCachedGrants     = 1 << 16
	maxCachedBytes      = 32 << 20
	maxCachedToken      = 2 << 10
	cachedGrantOverhead = 200 // the map's entry, the Grant, the strings' headers
)

// grantCache keeps the grants of tokens verified, so that a client's next
// request with the same token costs a map lookup, not a signature check
// (tens to hundreds of microseconds: BenchmarkVerify). Only valid tokens
// enter it, so its size follows the tokens the backend signed. Full, it
// drops the grants that expired or whose keys were replaced first.
type grantCache struct {
	maxGrants, maxBytes int

	mu    sync.Mutex
	m     map[string]cachedGrant
	bytes int // of the grants kept, as size counts them
}

type cachedGrant struct {
	g    Grant
	keys *keySet // the keys it was verified with: after a Reload, it is not used
}

// size is what the grant of token counts against maxCachedBytes.
func size(token string, g *Grant) int {
	return len(token) + len(g.Sub) + len(g.Stream) + cachedGrantOverhead
}

func (c *grantCache) get(token string, keys *keySet) (Grant, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[token]
	if !ok || e.keys != keys {
		return Grant{}, false
	}
	return e.g, true
}

// put keeps g, verified with keys, for token; now is the time, by which
// the grants that expired are the first dropped to make room.
func (c *grantCache) put(token string, keys *keySet, g Grant, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedGrant{}
	}
	if old, ok := c.m[token]; ok {
		c.bytes -= size(token, &old.g)
		delete(c.m, token)
	}
	n := size(token, &g)
	for len(c.m) > 0 && (len(c.m) >= c.maxGrants || c.bytes+n > c.maxBytes) {
		c.drop(keys, now)
	}
	c.m[token] = cachedGrant{g: g, keys: keys}
	c.bytes += n
}

// dropScan is how many grants drop looks at for one no longer of use.
const dropScan = 16

// drop drops the grants no longer of use (expired, or of keys not in use)
// among dropScan of them, or else one of them.
func (c *grantCache) drop(keys *keySet, now time.Time) {
	var first string
	dropped, seen := false, 0
	for token, e := range c.m { // map order: a different start each time
		if seen == 0 {
			first = token
		}
		if e.keys != keys || !now.Before(e.g.Expires.Add(MaxSkew)) {
			c.bytes -= size(token, &e.g)
			delete(c.m, token)
			dropped = true
		}
		if seen++; seen == dropScan {
			break
		}
	}
	if !dropped {
		e := c.m[first]
		c.bytes -= size(first, &e.g)
		delete(c.m, first)
	}
}

// New returns a Verifier for cfg, with the public keys read.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	var algs []string
	if len(cfg.Secret) > 0 {
		algs = append(algs, algHS256)
	}
	if cfg.PublicKeys != "" {
		algs = append(algs, algRS256, algES256, algEdDSA)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithLeeway(MaxSkew),
		jwt.WithTimeFunc(cfg.Clock.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v := &Verifier{cfg: cfg, algs: algs, parser: jwt.NewParser(opts...), validator: jwt.NewValidator(opts...),
		cache: grantCache{maxGrants: maxCachedGrants, maxBytes: maxCachedBytes}}
	if cfg.PublicKeys != "" {
		if _, err := v.Reload(); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Reload reads the public keys again (on SIGHUP: key rotation) and returns
// how many it holds. A file that cannot be read or holds no valid key is an
// error, and the keys in use stay.
func (v *Verifier) Reload() (int, error) {
	if v.cfg.PublicKeys == "" {
		return 0, nil
	}
	ks, err := loadKeys(v.cfg.PublicKeys)
	if err != nil {
		return 0, err
	}
	v.keys.Store(ks)
	return len(ks.keys), nil
}

// Expired reports whether g's token has expired by now, as Verify would
// find: at ValidUntil. A push connection, admitted once, is closed then
// unless its token was renewed.
func (v *Verifier) Expired(g *Grant) bool {
	return !v.cfg.Clock.Now().Before(g.ValidUntil())
}

// claims are the claims of a stream token.
type claims struct {
	jwt.RegisteredClaims
	Audience audience `json:"aud"` // in place of RegisteredClaims'
	Stream   *string  `json:"stream"`
	Role     *string  `json:"role"`
}

// GetAudience implements jwt.Claims, with the audience of c.
func (c claims) GetAudience() (jwt.ClaimStrings, error) { return jwt.ClaimStrings(c.Audience), nil }

// maxAudiences is the most audiences a token may name.
const maxAudiences = 16

// audience is an "aud" claim: one string, or an array of at most
// maxAudiences (RFC 7519 §4.1.3). jwt.ClaimStrings decodes each through an
// interface, what costs a stranger's token of hundreds most
// (BenchmarkInspect).
type audience []string

// UnmarshalJSON implements json.Unmarshaler.
func (a *audience) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	case bytes.Count(b, []byte{','}) >= maxAudiences: // a comma in a name counts too: refused, never admitted
		return fmt.Errorf("more than %d audiences", maxAudiences)
	}
	var list []*string // a null among them is not an audience, as for jwt
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	if list == nil {
		*a = nil
		return nil
	}
	*a = make(audience, len(list))
	for i, s := range list {
		if s == nil {
			return errors.New("an audience that is not a string")
		}
		(*a)[i] = *s
	}
	return nil
}

// Inspect reads token without checking its signature, which costs tens
// to hundreds of microseconds (BenchmarkVerify) where reading costs a few.
// It returns the grant of a token verified before (verified: Verify
// returns the same), or else what the claims of token would admit, or the
// error Verify would return for what it can tell without the signature:
// ErrExpired when its exp has passed, ErrInvalid when it is malformed or
// too long, of an algorithm or a key not accepted, or its claims break
// their rules. A
// grant not verified admits nothing: the caller may refuse the token by
// it, before it pays for Verify, never accept it.
func (v *Verifier) Inspect(token string) (g *Grant, verified bool, err error) {
	if len(token) > MaxTokenLen {
		return nil, false, ErrInvalid
	}
	if g, ok := v.cache.get(token, v.keys.Load()); ok {
		if v.Expired(&g) {
			return nil, false, ErrExpired
		}
		return &g, true, nil
	}
	if strings.LastIndexByte(token, '.') > MaxSigningInputLen {
		return nil, false, ErrInvalid
	}
	var c claims
	t, _, err := v.parser.ParseUnverified(token, &c)
	if err != nil || !slices.Contains(v.algs, t.Method.Alg()) {
		return nil, false, ErrInvalid
	}
	if _, err := v.key(t); err != nil {
		return nil, false, ErrInvalid
	}
	if err := v.validator.Validate(&c); err != nil {
		return nil, false, claimsError(err)
	}
	g, err = v.grant(&c)
	return g, false, err
}

// Verify verifies token and returns what it admits, or ErrInvalid or
// ErrExpired. Neither the error nor anything it wraps holds the token. A
// token Inspect refuses is refused without its signature checked.
func (v *Verifier) Verify(token string) (*Grant, error) {
	keys := v.keys.Load() // before the check: a Reload meanwhile makes the entry unused
	g, verified, err := v.Inspect(token)
	if err != nil || verified {
		return g, err
	}
	v.checks.Add(1)
	var c claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.key); err != nil {
		return nil, claimsError(err)
	}
	if g, err = v.grant(&c); err != nil {
		return nil, err
	}
	if len(token) <= maxCachedToken {
		v.cache.put(token, keys, *g, v.cfg.Clock.Now())
	}
	return g, nil
}

// SignatureChecks returns how many signatures Verify has checked: of the
// tokens not verified before that Inspect did not refuse.
func (v *Verifier) SignatureChecks() int64 { return v.checks.Load() }

// claimsError returns why jwt refused a token, as Verify answers it:
// ErrExpired when its exp alone has passed, else ErrInvalid.
func claimsError(err error) error {
	if errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenInvalidAudience) &&
		!errors.Is(err, jwt.ErrTokenNotValidYet) && !errors.Is(err, jwt.ErrTokenUsedBeforeIssued) {
		return ErrExpired
	}
	return ErrInvalid
}

// grant returns what claims c, whose times and audience jwt checked,
// admit, or ErrInvalid when they break the rules of the others.
func (v *Verifier) grant(c *claims) (*Grant, error) {
	g := &Grant{Sub: c.Subject, Role: RolePlayer, Expires: c.ExpiresAt.UTC()}
	if c.Role != nil {
		g.Role = *c.Role
	}
	if c.Stream != nil {
		g.Stream = *c.Stream
	}
	switch {
	case !protocol.ValidName(g.Sub):
		return nil, ErrInvalid // it could not be a private id
	case g.Role != RolePlayer && g.Role != RoleSpectator:
		return nil, ErrInvalid
	case !validStreamClaim(g.Stream):
		return nil, ErrInvalid
	case v.cfg.Audience == "" && len(c.Audience) > 0:
		return nil, ErrInvalid // meant for someone else
	}
	return g, nil
}

// validStreamClaim reports whether s may be a "stream" claim: a stream
// name, or a prefix of one (possibly empty) followed by "*".
func validStreamClaim(s string) bool {
	if prefix, ok := strings.CutSuffix(s, "*"); ok {
		return prefix == "" || protocol.ValidName(prefix)
	}
	return protocol.ValidName(s)
}

// key finds the keys that may have signed t: the secret for HS256; for the
// others, the public key its "kid" names, or without one every public key
// of its algorithm. An algorithm is never verified with another's key.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, ErrInvalid // extensions it must understand: none are (RFC 7515 §4.1.11)
	}
	alg := t.Method.Alg()
	if alg == algHS256 {
		if len(v.cfg.Secret) == 0 {
			return nil, ErrInvalid
		}
		return v.cfg.Secret, nil
	}
	ks := v.keys.Load()
	if ks == nil {
		return nil, ErrInvalid
	}
	kid, named := t.Header["kid"]
	if named {
		s, ok := kid.(string)
		if !ok {
			return nil, ErrInvalid
		}
		if k, ok := ks.byKid(s, alg); ok {
			return k, nil
		}
		return nil, ErrInvalid
	}
	set := ks.byAlg(alg)
	if len(set.Keys) == 0 {
		return nil, ErrInvalid
	}
	return set, nil
}
