package main

import (
	"hash/maphash"
	"strconv"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

// What a client saw is kept as a hash per event, in order, to be compared
// with the stream's own order at the end (verify.go).

type seenEvent struct {
	t int64
	h uint64
}

// chunks is an append-only list that never copies what it holds, so that
// thousands of clients each recording every event stay cheap.
type chunks struct{ c [][]seenEvent }

const chunkLen = 4096

func (l *chunks) add(e seenEvent) {
	if n := len(l.c); n == 0 || len(l.c[n-1]) == chunkLen {
		l.c = append(l.c, make([]seenEvent, 0, chunkLen))
	}
	last := &l.c[len(l.c)-1]
	*last = append(*last, e)
}

func (l *chunks) all() []seenEvent {
	var out []seenEvent
	for _, c := range l.c {
		out = append(out, c...)
	}
	return out
}

// seed keys the event hashes of one run.
var seed = maphash.MakeSeed()

func eventHash(e esclient.Event) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var buf [20]byte
	_, _ = h.Write(strconv.AppendInt(buf[:0], e.T, 10))
	_, _ = h.WriteString("\x00" + e.Type + "\x00" + e.Origin + "\x00")
	_, _ = h.WriteString(e.Body)
	return h.Sum64()
}
