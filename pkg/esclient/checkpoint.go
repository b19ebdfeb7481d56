package esclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// Checkpoints (docs/protocol.md, "Checkpoints"): the client reports the
// hash of its state at every checkpoint tick, uploads its snapshot or a
// desync dump when the server asks (Update.Snap, Update.Dump), and loads
// the stream's snapshot when a reply starts after one (Update.Base).
// pkg/gamesim does all of this for a Sim that implements its Snapshotter.

// HashReport is the state hash of a checkpoint tick.
type HashReport struct {
	T    int64
	Hash string // lowercase hex SHA-256 of the snapshot (HashOf)
}

// maxPendingHashes bounds the reports waiting to be sent: the newest are kept.
const maxPendingHashes = protocol.MaxHashReports

// HashOf returns the hash of a snapshot as the protocol defines it:
// lowercase hex SHA-256.
func HashOf(snapshot []byte) string {
	sum := sha256.Sum256(snapshot)
	return hex.EncodeToString(sum[:])
}

// ReportHash queues the state hash of checkpoint tick t for the next sync
// that covers it (t below the sync's last known tick). At most 16 reports
// wait; older ones are dropped. Reports of a stream that started anew are
// dropped. A spectator (Config.Spectate) reports nothing: it has no vote.
func (c *Client) ReportHash(t int64, hash string) {
	if c.cfg.Spectate {
		return // a spectator has no vote
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.hashes {
		if h.T == t {
			return
		}
	}
	c.hashes = append(c.hashes, HashReport{T: t, Hash: hash})
	if len(c.hashes) > maxPendingHashes {
		c.hashes = c.hashes[len(c.hashes)-maxPendingHashes:]
	}
	c.signal()
}

// Rewind makes the next sync ask for the stream from tick t on, to
// re-simulate from a snapshot of tick t-1 (or from 0). A push connection
// is opened again from t: what it sent after the call is dropped.
func (c *Client) Rewind(t int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastT = max(t, 0)
	c.rewinds++
	c.signal()
}

// Checkpoint is a checkpoint the server judged: its tick, of an epoch,
// and its canonical hash.
type Checkpoint struct {
	T     int64
	Hash  string
	Epoch string
}

// LastCheckpoint returns the latest checkpoint of the stream's current
// epoch whose canonical hash the server has told this client, and whether
// there is one (docs/gamesim-spec.md, "The last checkpoint"). The server
// tells it with the stream's snapshot, which it stores only when the
// snapshot hashes to the canonical hash of its tick: the snapshot that
// Snapshot fetched, or the one PutSnapshot uploaded and the server stored.
// It tells no client the hash of the other checkpoints it judges (an "_x"
// names the clients that diverged, not the hash), so this is the stream's
// latest verified state as far as this client has seen it, not every
// verdict. It moves only forward, and a new epoch clears it.
func (c *Client) LastCheckpoint() (Checkpoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastCkpt, c.lastCkpt.Hash != ""
}

// judged takes in a checkpoint the server said the canonical hash of, of
// the client's epoch when cp.Epoch is "": it becomes LastCheckpoint when
// it is of the client's epoch and later than the one held.
func (c *Client) judged(cp Checkpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp.Epoch == "" {
		cp.Epoch = c.epoch
	}
	last := c.lastCkpt
	if (c.epoch != "" && cp.Epoch != c.epoch) || (last.Hash != "" && last.Epoch == cp.Epoch && last.T >= cp.T) {
		return
	}
	c.lastCkpt = cp
}

// Snapshot is a stream's verified state at the end of a checkpoint tick.
type Snapshot struct {
	T     int64
	Hash  string
	Epoch string
	Data  []byte
}

// octetStream is the content type of a snapshot or a dump.
const octetStream = "application/octet-stream"

// ErrNoSnapshot means the stream has no snapshot.
var ErrNoSnapshot = errors.New("esclient: the stream has no snapshot")

// Snapshot fetches the stream's snapshot and checks that its bytes
// have the hash the server verified. It returns ErrNoSnapshot when there
// is none.
func (c *Client) Snapshot(ctx context.Context) (*Snapshot, error) {
	resp, err := c.do(ctx, http.MethodGet, c.cfg.BaseURL+"/"+c.cfg.Stream+"/snapshot", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, ErrNoSnapshot
	}
	data, err := c.body(resp)
	if err != nil {
		return nil, err
	}
	t, err := strconv.ParseInt(resp.Header.Get("Eventstream-Tick"), 10, 64)
	if err != nil {
		return nil, errors.New("esclient: a snapshot without its tick")
	}
	snap := &Snapshot{T: t, Hash: resp.Header.Get("Eventstream-Hash"), Epoch: resp.Header.Get("Eventstream-Epoch"), Data: data}
	if HashOf(data) != snap.Hash {
		return nil, fmt.Errorf("esclient: the snapshot of tick %d does not have its hash", t)
	}
	c.judged(Checkpoint{T: snap.T, Hash: snap.Hash, Epoch: snap.Epoch})
	return snap, nil
}

// PutSnapshot uploads this client's snapshot of checkpoint tick t, as the
// server asked (Update.Snap). It reports whether the server stored it (it
// keeps one of that tick or a later one otherwise): then its hash is the
// canonical hash of t (LastCheckpoint). An *Error with code
// snapshot_mismatch means the bytes do not hash to the canonical hash.
func (c *Client) PutSnapshot(ctx context.Context, t int64, data []byte) (bool, error) {
	if c.cfg.Spectate {
		return false, ErrSpectator
	}
	resp, err := c.do(ctx, http.MethodPut, c.prefix+"snapshot/"+strconv.FormatInt(t, 10), data, octetStream)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := c.body(resp)
	if err != nil {
		return false, err
	}
	var reply struct {
		T      *int64 `json:"t"`
		Stored bool   `json:"stored"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return false, fmt.Errorf("esclient: the reply to a snapshot: %w", err)
	}
	if reply.Stored && reply.T != nil {
		c.judged(Checkpoint{T: *reply.T, Hash: HashOf(data)})
	}
	return reply.Stored, nil
}

// PutDump uploads this client's snapshot of checkpoint tick t for a desync
// report, as the server asked (Update.Dump).
func (c *Client) PutDump(ctx context.Context, t int64, data []byte) error {
	if c.cfg.Spectate {
		return ErrSpectator
	}
	resp, err := c.do(ctx, http.MethodPut, c.prefix+"dump/"+strconv.FormatInt(t, 10), data, octetStream)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = c.body(resp)
	return err
}

// do sends one request, with the token (Config.Token): a sync (POST of
// JSON) or a checkpoint request. Every request the client makes over HTTP
// is built here.
func (c *Client) do(ctx context.Context, method, target string, body []byte, contentType string) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return nil, fmt.Errorf("esclient: %w", redact(err, c.cfg.PrivateID))
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, fmt.Errorf("esclient: %s: %w", strings.ToLower(method), redact(err, c.cfg.PrivateID))
	}
	return resp, nil
}

// body reads a reply's body, or returns the *Error it holds.
func (c *Client) body(resp *http.Response) ([]byte, error) {
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("esclient: reading the reply: %w", redact(err, c.cfg.PrivateID))
	}
	if resp.StatusCode/100 != 2 {
		return nil, replyError(resp, data)
	}
	return data, nil
}

// ParseDesync reads the body of a TypeDesync event.
func ParseDesync(body string) (t int64, ids []string, err error) {
	var d protocol.Desync
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		return 0, nil, fmt.Errorf("esclient: a desync body: %w", err)
	}
	return d.T, d.IDs, nil
}
