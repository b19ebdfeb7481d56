package stream

// Admission, one rule for both stores (docs/protocol.md, "Trust model"): a
// stream's client cap counts the clients connected now, so that ids that
// went silent give their slots back; a stream remembers at most
// knownPerSlot times as many ids as it has slots, so that minted ids cannot
// grow it without bound. A new id that finds that many remembered takes the
// place of the one disconnected longest (forgetLess), which the stream
// forgets: if it returns, it is a new client. Only when every remembered id
// is connected is a new one refused.
const knownPerSlot = 8

// admit returns nil, or ErrClientCap for a sync that would connect a
// client (isNew: an id the stream does not know) to a stream that knows
// known ids and has connected clients connected. forget says that the new
// id must take the place of a disconnected one; canForget, that the stream
// remembers one. Mirrored in the admission part of lua/sync.lua.
func (c Config) admit(isNew, connect, canForget bool, known, connected int) (forget bool, err error) {
	switch {
	case connect && connected >= c.MaxClientsPerStream:
		return false, ErrClientCap
	case isNew && known >= knownPerSlot*c.MaxClientsPerStream:
		if !canForget {
			return false, ErrClientCap
		}
		return true, nil
	}
	return false, nil
}

// forgetLess orders the disconnected ids a stream remembers, the first
// forgotten first: the earliest tick of its "_d", then the smallest public
// id (pubLess). Mirrored in the admission part of lua/sync.lua.
func forgetLess(aTick int64, aPub string, bTick int64, bPub string) bool {
	if aTick != bTick {
		return aTick < bTick
	}
	return pubLess(aPub, bPub) < 0
}
