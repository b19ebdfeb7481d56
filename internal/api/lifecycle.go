package api

import (
	"go.uber.org/zap"

	"github.com/goeventstream/eventstream/internal/stream"
)

// The lifecycle of streams and clients is logged and counted here, in one
// place: a sync reports the stream it created and the client it connected,
// a sweep the clients it disconnected and the streams it expired.

// observeSync logs and counts what a sync did to the stream.
func (s *Server) observeSync(name string, res *stream.SyncResult) {
	s.metrics.ObserveSync(res)
	if res.Created {
		s.log.Info("stream created", zap.String("stream", name), zap.String("epoch", res.Epoch))
	}
	if res.Connected {
		s.log.Info("client connected", zap.String("stream", name),
			zap.String("public_id", res.PublicID), zap.Int64("tick", res.T))
	}
}

// ObserveSweep logs and counts what a sweep did. The owner of the
// stream.Sweeper gives it every result (Sweeper.OnSweep).
func (s *Server) ObserveSweep(res stream.SweepResult) {
	s.metrics.ObserveSweep(res)
	for _, d := range res.Disconnected {
		s.log.Info("client disconnected", zap.String("stream", d.Stream),
			zap.String("public_id", d.PublicID), zap.Int64("tick", d.T))
	}
	for _, name := range res.Expired {
		s.log.Info("stream expired", zap.String("stream", name))
	}
}

// SweepFailed logs and counts a sweep that failed (Sweeper.OnError).
func (s *Server) SweepFailed(err error) {
	s.metrics.SweepFailed()
	s.log.Error("sweep failed", zap.Error(err))
}
