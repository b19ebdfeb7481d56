package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/protocol"
)

// jwks writes a JWKS document of the public halves of keys, by kid.
func jwks(t *testing.T, file string, keys map[string]*ecdsa.PrivateKey) {
	t.Helper()
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		x, y := make([]byte, 32), make([]byte, 32)
		k.X.FillBytes(x)
		k.Y.FillBytes(y)
		enc := base64.RawURLEncoding.EncodeToString
		doc.Keys = append(doc.Keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "x": enc(x), "y": enc(y)})
	}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, b, 0o600))
}

// TestBinaryAuth runs the real binary with stream tokens: a token signed
// as a game's backend would sign one joins, a request without one is
// refused, the keys rotate on SIGHUP, /metrics stays off the public port,
// and no token reaches the log.
func TestBinaryAuth(t *testing.T) {
	oldKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	keys := filepath.Join(t.TempDir(), "jwks.json")
	jwks(t, keys, map[string]*ecdsa.PrivateKey{"k1": oldKey})

	r := apitest.StartBinary(t, nil, "-auth-public-keys", keys, "-auth-audience", "my-game",
		"-auth-open-prefix", "lobby-", "-log-level", "debug",
		"-trusted-proxies", "127.0.0.1/32", "-max-bad-signatures-per-address-per-minute", "2")
	sign := func(k *ecdsa.PrivateKey, kid, sub, streamClaim string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"sub": sub, "stream": streamClaim, "aud": "my-game", "exp": time.Now().Add(time.Hour).Unix(),
		})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		require.NoError(t, err)
		return s
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	// postFrom posts as the client at addr, behind a proxy on loopback.
	postFrom := func(addr, path, tok string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+r.Addr+path, strings.NewReader("{}"))
		require.NoError(t, err)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if addr != "" {
			req.Header.Set("X-Forwarded-For", addr)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	post := func(path, tok string) (int, string) { return postFrom("", path, tok) }
	code := func(body string) string {
		var e protocol.ErrorReply
		require.NoError(t, json.Unmarshal([]byte(body), &e), body)
		return e.Error.Code
	}

	status, body := post("/match-1/alice/0", "")
	require.Equal(t, http.StatusUnauthorized, status, body)
	assert.Equal(t, protocol.CodeUnauthorized, code(body))

	alice := sign(oldKey, "k1", "alice", "match-1")
	status, body = post("/match-1/alice/0", alice)
	require.Equal(t, http.StatusOK, status, body)
	var reply protocol.SyncReply
	require.NoError(t, json.Unmarshal([]byte(body), &reply))
	assert.Equal(t, "1", reply.ID)

	status, body = post("/match-1/bob/0", alice)
	require.Equal(t, http.StatusForbidden, status, body)
	assert.Equal(t, protocol.CodeForbidden, code(body), "alice's token is not bob's")

	resp, err := client.Post("http://"+r.Addr+"/match-1/bob/0?access_token="+sign(oldKey, "k1", "bob", "match-*"), "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a token in the query, for a prefix")

	status, body = post("/lobby-1/anyone/0", "")
	assert.Equal(t, http.StatusOK, status, "an open stream: %s", body)

	// Rotation: publish the new key, SIGHUP; retire the old one, SIGHUP.
	newTok := sign(newKey, "k2", "carol", "match-1")
	status, _ = post("/match-1/carol/0", newTok)
	require.Equal(t, http.StatusUnauthorized, status, "the new key is not published yet")
	jwks(t, keys, map[string]*ecdsa.PrivateKey{"k1": oldKey, "k2": newKey})
	require.NoError(t, r.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(r.Logs(), `"keys":2`) }, 10*time.Second, 10*time.Millisecond)
	status, body = post("/match-1/carol/0", newTok)
	require.Equal(t, http.StatusOK, status, body)
	jwks(t, keys, map[string]*ecdsa.PrivateKey{"k2": newKey})
	require.NoError(t, r.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(r.Logs(), `"keys":1`) }, 10*time.Second, 10*time.Millisecond)
	status, _ = post("/match-1/alice/1", alice)
	assert.Equal(t, http.StatusUnauthorized, status, "the retired key admits nobody")

	// A stranger's tokens with the published kid and a wrong signature:
	// two are checked, then its address is refused unchecked.
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests} {
		status, body = postFrom("203.0.113.5", "/match-1/dave/0", sign(oldKey, "k2", "dave", "match-1"))
		assert.Equal(t, want, status, "forgery %d: %s", i, body)
	}
	status, body = postFrom("203.0.113.6", "/match-1/erin/0", sign(newKey, "k2", "erin", "match-1"))
	assert.Equal(t, http.StatusOK, status, "another address: %s", body)

	resp, err = client.Get("http://" + r.Addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "with auth on, /metrics is not public unless asked for")

	logs := r.Logs()
	assert.Contains(t, logs, `"msg":"client connected"`)
	for _, tok := range []string{alice, newTok, "access_token", "alice", "carol"} {
		assert.NotContains(t, logs, tok, "the log holds a token or a sub")
	}
}

// TestAuthMetrics: with auth on, /metrics is on the public port only with
// -metrics-public, and names no stream without -metrics-stream-labels.
func TestAuthMetrics(t *testing.T) {
	secretKey := strings.Repeat("s", 32)
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantNames  bool
	}{
		{name: "by default", wantStatus: http.StatusNotFound},
		{name: "public", args: []string{"-metrics-public"}, wantStatus: http.StatusOK},
		{name: "public, with stream labels", args: []string{"-metrics-public", "-metrics-stream-labels"}, wantStatus: http.StatusOK, wantNames: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := newLogLines()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, append([]string{"-addr", "127.0.0.1:0", "-drain-delay", "0", "-auth-open-prefix", "open-"}, tt.args...),
					env("EVENTSTREAMD_AUTH_SECRET", secretKey), io.Discard, logs)
			}()
			t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
			addr := logs.waitAddr(t)
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			resp, err := client.Post("http://"+addr+"/open-named-stream/p/0", "application/json", strings.NewReader("{}"))
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)

			resp, err = client.Get("http://" + addr + "/metrics")
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			if resp.StatusCode != http.StatusOK {
				return
			}
			assert.Contains(t, string(b), "eventstreamd_store_streams 1")
			assert.Equal(t, tt.wantNames, strings.Contains(string(b), "open-named-stream"), "stream names in the metrics")
			assert.NotContains(t, string(b), secretKey)
		})
	}
}
