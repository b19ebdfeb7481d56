package api_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/metrics"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

// BenchmarkHTTPSync measures the HTTP path of a typical sync (handler,
// routing, metrics, JSON) without the network: a client fetching the last
// four ticks of events, 16 events, from a stream with some history.
func BenchmarkHTTPSync(b *testing.B) {
	h := newHarness(b, func(_ *api.Config, s *stream.Config) {
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond = 1e15, 1e15 // a clock that stands still refills nothing
	})
	post := `{"events":[{"type":"move","body":"left"},{"type":"move","body":"right"},{"type":"jump","body":""},{"type":"aim","body":"{\"x\":12,\"y\":-3}"}]}`
	for range 1000 {
		rec := httptest.NewRecorder()
		h.server.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/s/writer/0", strings.NewReader(post)))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Body.String())
		}
		h.clock.Advance(50 * time.Millisecond)
	}
	req := httptest.NewRequest(http.MethodGet, "/s/reader/997", nil) // t is 1001: ticks 997 to 1000
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.server.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"t":1000`) {
			b.Fatal(rec.Body.String())
		}
	}
}

// BenchmarkHTTPSyncHashes measures what hash reports add to a sync: ten
// clients of a stream sync five times a second each (a tick and a bit
// apart), 20% with an event; with reports, each reports its state hash
// once a second (every fifth sync), so a checkpoint is judged a second.
// Compare reports=off and reports=on with benchstat -col /reports, on the
// memory store and on Redis (its Lua time counts: Redis runs in the same
// machine).
func BenchmarkHTTPSyncHashes(b *testing.B) {
	stores := map[string]redisURL{"memory": ""}
	if _, err := exec.LookPath("redis-server"); err == nil {
		stores["redis"] = redisURL(redistest.Start(b).URL())
	}
	for _, store := range []string{"memory", "redis"} {
		url, ok := stores[store]
		if !ok {
			continue
		}
		for _, reports := range []bool{false, true} {
			b.Run(fmt.Sprintf("store=%s/reports=%s", store, map[bool]string{false: "off", true: "on"}[reports]), func(b *testing.B) {
				benchHashes(b, url, reports)
			})
		}
	}
}

func benchHashes(b *testing.B, url redisURL, reports bool) {
	h := newHarnessOn(b, url, func(_ *api.Config, s *stream.Config) {
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond = 1e15, 1e15
	})
	const clients = 10
	last := make([]int64, clients)
	hash := strings.Repeat("ab", 32)
	req := func(i int) *http.Request {
		c := i % clients
		body := ""
		if i%5 == 0 {
			body = `{"events":[{"type":"move","body":"left"}]`
		}
		// Each client's fifth sync reports the last checkpoint it has.
		if ck := (last[c] - 1) / 20 * 20; reports && (i/clients)%5 == 0 && ck >= 0 && ck < last[c] {
			if body == "" {
				body = "{"
			} else {
				body += ","
			}
			body += `"hashes":[{"t":` + strconv.FormatInt(ck, 10) + `,"h":"` + hash + `"}]`
		}
		if body != "" {
			body += "}"
		}
		return httptest.NewRequest(http.MethodPost, "/s/c"+strconv.Itoa(c)+"/"+strconv.FormatInt(last[c], 10), strings.NewReader(body))
	}
	i := 0
	before := scriptTime(b, url)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.server.ServeHTTP(rec, req(i))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Body.String())
		}
		last[i%clients] = replyT(rec.Body.Bytes())
		i++
		h.clock.Advance(time.Second / (5 * clients)) // five syncs a second per client
	}
	if url != "" {
		b.ReportMetric(float64(scriptTime(b, url)-before)/float64(i), "redis-µs/op")
	}
	judged := counter(b, h, "eventstreamd_checkpoint_judged_total")
	b.ReportMetric(judged*float64(5*clients)/float64(i), "judged/s") // per second of the clients' time
	if reports && i > 100*clients && judged == 0 {
		b.Fatal("no checkpoint was judged")
	}
}

// replyT reads the t of a sync reply.
func replyT(b []byte) int64 {
	i := bytes.Index(b, []byte(`"t":`)) + 4
	j := i
	for b[j] >= '0' && b[j] <= '9' {
		j++
	}
	t, _ := strconv.ParseInt(string(b[i:j]), 10, 64)
	return t
}

// BenchmarkLateJoin measures a late joiner's way to a verified state in a
// stream that has run long enough to be compacted: its first sync (told
// to start from the snapshot), the snapshot (checked against its hash)
// and the retained events that follow, page by page, over the HTTP path
// in process, decoded and applied. It must not grow with the stream's
// total history.
func BenchmarkLateJoin(b *testing.B) {
	for _, history := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("history=%dk", history/1000), func(b *testing.B) {
			h := newHarness(b, func(_ *api.Config, s *stream.Config) { s.MaxClientsPerStream = 1 << 30 })
			life := streamtest.NewLife(b, h.store, h.clock)
			// The worst moment: just before the next snapshot, with about
			// 10 000 events (-snapshot-every) to play after the last one.
			for range history/100 + 95 {
				life.Round()
			}
			want := life.State()
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				n++
				id := "joiner-" + strconv.Itoa(n)
				var pages [][]byte
				var base *int64
				for from := int64(0); ; {
					rec := h.do(http.MethodGet, "/"+streamtest.LifeStream+"/"+id+"/"+strconv.FormatInt(from, 10), "")
					if rec.Code != http.StatusOK {
						b.Fatal(rec.Body.String())
					}
					var reply struct {
						T      int64           `json:"t"`
						Base   *int64          `json:"base"`
						More   bool            `json:"more"`
						Events json.RawMessage `json:"events"`
					}
					if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
						b.Fatal(err)
					}
					if reply.Base != nil {
						base = reply.Base
					}
					if ev := reply.Events[1 : len(reply.Events)-1]; len(ev) > 0 {
						pages = append(pages, ev)
					}
					if from = reply.T; !reply.More {
						break
					}
				}
				rec := h.do(http.MethodGet, "/"+streamtest.LifeStream+"/snapshot", "")
				snap := rec.Body.Bytes()
				if base == nil || rec.Header().Get("Eventstream-Tick") != strconv.FormatInt(*base, 10) ||
					rec.Header().Get("Eventstream-Hash") != hashHex(snap) {
					b.Fatal("no verified snapshot to start from")
				}
				if got := streamtest.StateOf(snap, pages...); !bytes.Equal(got, want) {
					b.Fatal("the joiner did not reach the others' state")
				}
			}
		})
	}
}

// counter reads a counter of the harness's registry.
func counter(tb testing.TB, h *harness, name string) float64 {
	tb.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	tb.Fatalf("no %s", name)
	return 0
}

// scriptTime returns the microseconds Redis at url has spent in scripts
// (INFO commandstats), or 0 for no Redis.
func scriptTime(tb testing.TB, url redisURL) int64 {
	if url == "" {
		return 0
	}
	opt, err := rueidis.ParseURL(string(url))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	info, err := c.Do(context.Background(), c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	for line := range strings.Lines(info) {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		for _, kv := range strings.Split(strings.TrimSpace(line[strings.Index(line, ":")+1:]), ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				total += n
			}
		}
	}
	return total
}

// pollConn is a server as eventstreamd builds it for esbench's load
// (scripts/floor.sh), and one connection to it: the memory store behind
// the store metrics, new ids limited by address, no debug log, the
// server's http.Server.ConnContext. Its stream "s" has a client "c"
// whose last sync answered tick t of epoch.
type pollConn struct {
	srv   *api.Server
	token string // its Authorization, when set
	clock *clock.Fake
	ctx   context.Context // the connection's
	t     int64
	epoch string
}

// newPollConn returns a connection whose client has joined stream s, with
// token when it is not empty, on a server configured by edit.
func newPollConn(tb testing.TB, token string, edit ...func(*api.Config)) *pollConn {
	tb.Helper()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	scfg := stream.DefaultConfig()
	scfg.Clock = fake
	scfg.MaxSyncsPerSecond, scfg.MaxEventsPerSecond = 0, 0 // a clock that stands still refills nothing
	store := newStore(tb, scfg, "")
	m, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry(), Streams: store, MaxStreamSeries: 1000, Version: "test"})
	require.NoError(tb, err)
	acfg := api.Config{Store: m.InstrumentStore(store), Metrics: m, Limits: api.DefaultLimits(), Clock: fake}
	acfg.Admission.NewClientsPerAddressPerMinute = 1200
	for _, e := range edit {
		e(&acfg)
	}
	srv, err := api.New(acfg)
	require.NoError(tb, err)
	p := &pollConn{srv: srv, token: token, clock: fake, ctx: srv.ConnContext(context.Background(), tcpConn{addr: "192.0.2.1:1234"})}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, p.authorize(httptest.NewRequestWithContext(p.ctx, http.MethodPost, "/s/c/0", strings.NewReader(`{"events":[{"type":"move","body":"left"}]}`))))
	require.Equal(tb, http.StatusOK, rec.Code, rec.Body.String())
	var reply struct {
		T     int64  `json:"t"`
		Epoch string `json:"epoch"`
	}
	require.NoError(tb, json.Unmarshal(rec.Body.Bytes(), &reply))
	p.t, p.epoch = reply.T, reply.Epoch
	return p
}

// request returns one of esbench's syncs: a poll (GET, the epoch in the
// query) or a post of one event of 64 bytes.
func (p *pollConn) request(post bool) *http.Request {
	target := "/s/c/" + strconv.FormatInt(p.t, 10) + "?epoch=" + p.epoch
	if post {
		return p.authorize(httptest.NewRequestWithContext(p.ctx, http.MethodPost, target, strings.NewReader(pollEvent)))
	}
	return p.authorize(httptest.NewRequestWithContext(p.ctx, http.MethodGet, target, nil))
}

// authorize gives r the connection's token, if it has one.
func (p *pollConn) authorize(r *http.Request) *http.Request {
	if p.token != "" {
		r.Header.Set("Authorization", "Bearer "+p.token)
	}
	return r
}

var pollEvent = `{"events":[{"type":"move","body":"` + strings.Repeat("x", 64) + `"}]}`

// tcpConn is a TCP connection from addr, for api.Server.ConnContext.
type tcpConn struct {
	net.Conn
	addr string
}

func (c tcpConn) RemoteAddr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(c.addr))
}

// discardWriter is a ResponseWriter that allocates nothing of its own, so
// that allocations counted are the server's.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (w *discardWriter) reset() { clear(w.h); w.status = 0 }

// TestPollAllocations holds the allocations of the syncs of
// BenchmarkHTTPPoll (the requests' own, built by httptest, are not
// counted): each was found in a profile of the server under esbench.
func TestPollAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates, and sync.Pool drops what it is given at random")
	}
	for _, tt := range []struct {
		give string
		post bool
		want float64
	}{
		{give: "poll", want: 8},
		{give: "post", post: true, want: 19},
	} {
		t.Run(tt.give, func(t *testing.T) {
			p := newPollConn(t, "")
			w := &discardWriter{h: http.Header{}}
			build := testing.AllocsPerRun(100, func() { _ = p.request(tt.post) })
			served := testing.AllocsPerRun(100, func() {
				w.reset()
				p.srv.ServeHTTP(w, p.request(tt.post))
				if w.status != http.StatusOK {
					t.Fatalf("status %d", w.status)
				}
			})
			if n := served - build; n > tt.want {
				t.Errorf("a %s allocates %v times, want at most %v", tt.give, n, tt.want)
			}
			t.Logf("%s: %v allocations", tt.give, served-build)
		})
	}
}

// BenchmarkHTTPPoll measures the syncs of esbench's load, in process: a
// client up to date polling with its epoch, and one posting an event
// each tick.
func BenchmarkHTTPPoll(b *testing.B) {
	for _, post := range []bool{false, true} {
		b.Run(map[bool]string{false: "poll", true: "post"}[post], func(b *testing.B) {
			p := newPollConn(b, "")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				if post { // a tick each: a tick holds at most a page of events
					p.clock.Advance(50 * time.Millisecond)
					p.t++
				}
				w.reset()
				p.srv.ServeHTTP(w, p.request(post))
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// BenchmarkHTTPPollAuth measures what a token adds to BenchmarkHTTPPoll's
// poll, by algorithm: auth off; the client's valid token (verified once,
// then from the verifier's cache); and a stranger's bogus one, with a
// known kid and claims that admit the poll but the signature of another
// token, as a stranger sends to make the server check signatures: with
// bad signatures not limited (each is checked), and once its address has
// sent its limit of them (each is refused unchecked).
func BenchmarkHTTPPollAuth(b *testing.B) {
	b.Run("auth=off", func(b *testing.B) { benchPollAuth(b, newPollConn(b, ""), http.StatusOK) })
	keys, file := pollAuthKeys(b)
	for _, k := range keys {
		withKeys := func(c *api.Config) {
			v, err := auth.New(auth.Config{PublicKeys: file, Clock: c.Clock})
			require.NoError(b, err)
			c.Auth = v
		}
		valid := pollToken(b, k, "1")
		b.Run("alg="+k.method.Alg()+"/token=valid", func(b *testing.B) {
			benchPollAuth(b, newPollConn(b, valid, withKeys), http.StatusOK)
		})
		other := pollToken(b, k, "2")
		bogus := valid[:strings.LastIndexByte(valid, '.')] + other[strings.LastIndexByte(other, '.'):]
		b.Run("alg="+k.method.Alg()+"/token=bogus", func(b *testing.B) {
			p := newPollConn(b, valid, withKeys)
			p.token = bogus
			benchPollAuth(b, p, http.StatusUnauthorized)
		})
		b.Run("alg="+k.method.Alg()+"/token=bogus-limited", func(b *testing.B) {
			const limit = 60
			p := newPollConn(b, valid, withKeys, func(c *api.Config) { c.Admission.BadSignaturesPerAddressPerMinute = limit })
			p.token = bogus
			w := &discardWriter{h: http.Header{}}
			for range limit { // the clock stands still: nothing refills
				w.reset()
				p.srv.ServeHTTP(w, p.request(false))
				require.Equal(b, http.StatusUnauthorized, w.status)
			}
			benchPollAuth(b, p, http.StatusTooManyRequests)
		})
	}
}

func benchPollAuth(b *testing.B, p *pollConn, want int) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		p.srv.ServeHTTP(w, p.request(false))
		if w.status != want {
			b.Fatalf("status %d, want %d", w.status, want)
		}
	}
}

// pollAuthKey is a key stream tokens are signed with.
type pollAuthKey struct {
	method jwt.SigningMethod
	key    crypto.Signer
	kid    string
}

// pollAuthKeys returns a key of each asymmetric algorithm, and the file
// of their public keys, by kid.
func pollAuthKeys(tb testing.TB) ([]pollAuthKey, string) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(tb, err)
	keys := []pollAuthKey{
		{method: jwt.SigningMethodRS256, key: testRSA, kid: "r"},
		{method: jwt.SigningMethodES256, key: ec, kid: "e"},
		{method: jwt.SigningMethodEdDSA, key: ed, kid: "d"},
	}
	var file []byte
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k.key.Public())
		require.NoError(tb, err)
		file = append(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"kid": k.kid}, Bytes: der})...)
	}
	path := filepath.Join(tb.TempDir(), "keys.pem")
	require.NoError(tb, os.WriteFile(path, file, 0o600))
	return keys, path
}

// pollToken signs a token of k for pollConn's client, told apart by jti.
func pollToken(tb testing.TB, k pollAuthKey, jti string) string {
	tok := jwt.NewWithClaims(k.method, jwt.MapClaims{"sub": "c", "stream": "s", "jti": jti,
		"exp": time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC).Unix()})
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.key)
	require.NoError(tb, err)
	return s
}
