package main

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goeventstream/eventstream/internal/loadgen"
)

// serverSample is what esbench reads from the server's /metrics: its
// CPU time, user and system (process_cpu_seconds_total, or /proc with
// -server-pid), and how long its handler took over the syncs it answered,
// by histogram bucket.
type serverSample struct {
	cpu     float64
	buckets map[float64]float64 // upper bound in seconds → syncs at most that long
}

// syncBucket is the prefix of the server's duration buckets of syncs.
const syncBucket = `eventstreamd_http_request_duration_seconds_bucket{method="`

func (b *bench) serverSample(ctx context.Context) (serverSample, error) {
	smp, err := b.scrape(ctx)
	if b.cfg.ServerPID > 0 {
		// The server's metrics are then read only for the buckets.
		cpu, err := loadgen.ProcessCPU(b.cfg.ServerPID)
		smp.cpu = cpu.Seconds()
		return smp, err
	}
	return smp, err
}

func (b *bench) scrape(ctx context.Context) (serverSample, error) {
	smp := serverSample{buckets: map[float64]float64{}}
	if b.cfg.MetricsURL == "off" {
		return smp, errors.New("off")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.MetricsURL, nil)
	if err != nil {
		return smp, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return smp, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			if smp.cpu, err = strconv.ParseFloat(v, 64); err != nil {
				return smp, err
			}
			found = true
			continue
		}
		// …{method="POST",route="/{stream}/{client}/{tick}",le="0.005"} 123
		if !strings.HasPrefix(line, syncBucket) || !strings.Contains(line, `route="/{stream}/{client}/{tick}"`) {
			continue
		}
		_, le, _ := strings.Cut(line, `le="`)
		le, count, _ := strings.Cut(le, `"} `)
		bound, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(count, 64)
		if err1 == nil && err2 == nil {
			smp.buckets[bound] += n
		}
	}
	if !found {
		return smp, errors.New("no process_cpu_seconds_total")
	}
	return smp, sc.Err()
}

// pastBuckets is a quantile in the bucket past the largest bound.
const pastBuckets = -1

// serverLatency is the server's own time for the syncs answered between
// two samples, each quantile the upper bound of its histogram bucket, or
// pastBuckets if that is +Inf (JSON has no infinity).
func serverLatency(from, to serverSample) loadgen.Latency {
	bounds := slices.Sorted(maps.Keys(to.buckets))
	var total float64
	if len(bounds) > 0 {
		total = to.buckets[bounds[len(bounds)-1]] - from.buckets[bounds[len(bounds)-1]] // +Inf
	}
	if total <= 0 {
		return loadgen.Latency{}
	}
	at := func(q float64) float64 {
		for _, le := range bounds {
			if to.buckets[le]-from.buckets[le] >= q*total {
				if math.IsInf(le, 1) {
					return pastBuckets
				}
				return le * 1000
			}
		}
		return pastBuckets
	}
	return loadgen.Latency{P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: at(1), N: int64(total)}
}
