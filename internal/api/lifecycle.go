package api

import (
	"go.uber.org/zap"

	"github.com/goeventstream/eventstream/internal/stream"
)

// The lifecycle of streams and clients is logged and counted here, in one
// place: a sync reports the stream it created and the client it connected,
// a sweep the clients it disconnected and the streams it expired. Streams
// are logged at info; clients, which come and go by the thousand a second
// when a crowd joins, at debug, and are counted at every level
// (eventstreamd_store_events_appended_total{kind="connect"|"disconnect"}).
// Sampling would keep a random few of those lines, never the one of the
// client being looked into.

// observeSync logs and counts what a sync did to the stream.
func (s *Server) observeSync(name string, res *stream.SyncResult) {
	s.metrics.ObserveSync(res)
	if res.Created {
		s.log.Info("stream created", zap.String("stream", name), zap.String("epoch", res.Epoch))
	}
	if res.Connected {
		s.log.Debug("client connected", zap.String("stream", name),
			zap.String("public_id", res.PublicID), zap.Int64("tick", res.T))
	}
}

// ObserveSweep logs and counts what a sweep did. The owner of the
// stream.Sweeper gives it every result (Sweeper.OnSweep).
func (s *Server) ObserveSweep(res stream.SweepResult) {
	s.metrics.ObserveSweep(res)
	for _, d := range res.Disconnected {
		s.log.Debug("client disconnected", zap.String("stream", d.Stream),
			zap.String("public_id", d.PublicID), zap.Int64("tick", d.T))
	}
	for _, name := range res.Expired {
		s.log.Info("stream expired", zap.String("stream", name))
	}
	for _, f := range res.Failed {
		s.log.Warn("stream not swept; it is tried again", zap.String("stream", f.Stream), zap.Error(f.Err))
	}
}

// SweepFailed counts a sweep that failed (Sweeper.OnError). The first
// failure of a run of them is logged; SweepRecovered logs its end, so that
// an outage of the store is two lines, not four a second.
func (s *Server) SweepFailed(err error) {
	s.metrics.SweepFailed()
	if s.sweepFailures.Add(1) == 1 {
		s.log.Error("sweeps fail; the next failures are counted, not logged", zap.Error(err))
	}
}

// SweepRecovered logs that sweeps succeed again (Sweeper.OnRecover).
func (s *Server) SweepRecovered() {
	n := s.sweepFailures.Swap(0)
	s.log.Info("sweeps succeed again", zap.Int64("failures", n))
}
