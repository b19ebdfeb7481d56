package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// The checkpoint resources (docs/protocol.md, "Checkpoints"):
//
//	PUT /{stream}/{privateId}/snapshot/{tick}  a snapshot the server asked for
//	PUT /{stream}/{privateId}/dump/{tick}      a desync dump it asked for
//	GET /{stream}/snapshot                     the stream's snapshot
//	GET /{stream}/desyncs                      its desync reports
//	GET /{stream}/desyncs/{tick}/{publicId}    one dump

// The headers of a snapshot's reply, exposed to browsers.
const (
	headerTick  = "Eventstream-Tick"
	headerHash  = "Eventstream-Hash"
	headerEpoch = "Eventstream-Epoch"
)

const readMethods = "GET, HEAD, OPTIONS"

// allowed returns the methods a path allows, for Allow headers.
func allowed(path string) string {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/metrics":
		return opsMethods
	case len(seg) == 2 && (seg[1] == "snapshot" || seg[1] == "desyncs"):
		return readMethods
	case len(seg) == 4 && seg[1] == "desyncs" && (seg[2] == "snapshot" || seg[2] == "dump"):
		return "GET, HEAD, PUT, OPTIONS"
	case len(seg) == 4 && seg[1] == "desyncs":
		return readMethods
	case len(seg) == 4 && (seg[2] == "snapshot" || seg[2] == "dump"):
		return "PUT, OPTIONS"
	}
	return syncMethods
}

// route serves h for the methods allowed (a comma-separated list that
// OPTIONS ends), a preflight for OPTIONS and 405 for any other method.
func (s *Server) route(allowed string, h http.HandlerFunc, methods ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodOptions:
			preflight(w, allowed)
		case slices.Contains(methods, r.Method):
			h(w, r)
		default:
			w.Header().Set("Allow", allowed)
			s.writeError(w, r, errorf(protocol.CodeMethodNotAllowed,
				"method %s is not allowed here; use %s", r.Method, allowed))
		}
	}
}

// parseUpload validates the path and reads the body of an upload.
func (s *Server) parseUpload(r *http.Request) (*stream.Upload, error) {
	up := &stream.Upload{Stream: chi.URLParam(r, "stream"), PrivateID: chi.URLParam(r, "client")}
	if err := validNames(up.Stream, up.PrivateID); err != nil {
		return nil, err
	}
	t, ok := parseTick(chi.URLParam(r, "tick"))
	if !ok {
		return nil, errorf(protocol.CodeBadTick,
			"the checkpoint tick must be a non-negative decimal integer below 2^63, digits only")
	}
	up.T = t
	body, err := readBody(r, s.limits.MaxSnapshotBytes, "a snapshot or dump")
	if err != nil {
		return nil, err
	}
	up.Data = body
	return up, nil
}

// upload reserves the memory of an upload, parses it and hands it to put.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, put func(*stream.Upload) error) {
	mem, ok := s.reserve(w, r, s.limits.MaxSnapshotBytes)
	if !ok {
		return
	}
	defer mem.release()
	up, err := s.parseUpload(r)
	if err == nil {
		err = put(up)
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) putSnapshot(w http.ResponseWriter, r *http.Request) {
	s.upload(w, r, func(up *stream.Upload) error {
		t, stored, err := s.store.PutSnapshot(r.Context(), up)
		if err != nil {
			return err
		}
		if stored {
			s.metrics.SnapshotStored(len(up.Data))
		}
		b := append([]byte(`{"t":`), strconv.AppendInt(nil, t, 10)...)
		b = append(b, `,"stored":`...)
		b = strconv.AppendBool(b, stored)
		writeJSON(w, http.StatusOK, append(b, "}\n"...))
		return nil
	})
}

func (s *Server) putDump(w http.ResponseWriter, r *http.Request) {
	s.upload(w, r, func(up *stream.Upload) error {
		if err := s.store.PutDump(r.Context(), up); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "stream")
	if err := validNames(name, "-"); err != nil {
		s.writeError(w, r, err)
		return
	}
	// The snapshot is held until it is written: its memory is reserved
	// first, the most it can be, and trimmed once its size is known.
	mem, ok := s.reserve(w, r, s.limits.MaxSnapshotBytes)
	if !ok {
		return
	}
	defer mem.release()
	snap, err := s.store.Snapshot(r.Context(), name)
	if err == nil {
		mem.trim(int64(len(snap.Data)))
	}
	if errors.Is(err, stream.ErrNotFound) {
		err = errorf(protocol.CodeNotFound, "the stream has no snapshot")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set(headerTick, strconv.FormatInt(snap.T, 10))
	h.Set(headerHash, snap.Hash)
	h.Set(headerEpoch, snap.Epoch)
	writeBytes(w, r, snap.Data)
}

// writeBytes answers data as application/octet-stream.
func writeBytes(w http.ResponseWriter, r *http.Request, data []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Access-Control-Expose-Headers", headerTick+", "+headerHash+", "+headerEpoch)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// wireDesync is a desync report as GET /{stream}/desyncs lists it.
type wireDesync struct {
	T       int64              `json:"t"`
	At      int64              `json:"at"`
	Hash    string             `json:"hash"`
	Clients []wireDesyncClient `json:"clients"`
}

type wireDesyncClient struct {
	ID   string `json:"id"`
	Hash string `json:"hash"`
	Dump string `json:"dump,omitempty"` // the dump's path, once uploaded
}

func (s *Server) getDesyncs(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "stream")
	if err := validNames(name, "-"); err != nil {
		s.writeError(w, r, err)
		return
	}
	reps, err := s.store.Desyncs(r.Context(), name)
	if errors.Is(err, stream.ErrNotFound) {
		err = errorf(protocol.CodeNotFound, "no such stream")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Desyncs []wireDesync `json:"desyncs"`
	}{Desyncs: make([]wireDesync, len(reps))}
	for i, rep := range reps {
		d := wireDesync{T: rep.T, At: rep.At, Hash: rep.Hash, Clients: make([]wireDesyncClient, len(rep.Clients))}
		for j, c := range rep.Clients {
			d.Clients[j] = wireDesyncClient{ID: c.PublicID, Hash: c.Hash}
			if c.Dump {
				d.Clients[j].Dump = "/" + name + "/desyncs/" + strconv.FormatInt(rep.T, 10) + "/" + c.PublicID
			}
		}
		out.Desyncs[i] = d
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, append(b, '\n'))
}

func (s *Server) getDump(w http.ResponseWriter, r *http.Request) {
	name, pub := chi.URLParam(r, "stream"), chi.URLParam(r, "id")
	if err := validNames(name, pub); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, ok := parseTick(chi.URLParam(r, "tick"))
	if !ok {
		s.writeError(w, r, errorf(protocol.CodeBadTick,
			"the checkpoint tick must be a non-negative decimal integer below 2^63, digits only"))
		return
	}
	mem, ok := s.reserve(w, r, s.limits.MaxSnapshotBytes) // as a snapshot's
	if !ok {
		return
	}
	defer mem.release()
	data, err := s.store.Dump(r.Context(), name, t, pub)
	if err == nil {
		mem.trim(int64(len(data)))
	}
	if errors.Is(err, stream.ErrNotFound) {
		err = errorf(protocol.CodeNotFound, "no dump of tick %d by client %s", t, pub)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeBytes(w, r, data)
}
