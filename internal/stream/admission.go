package stream

// Admission, one rule for both stores (docs/protocol.md, "Trust model"): a
// stream's client cap counts the clients connected now, so that ids that
// went silent give their slots back; a stream remembers at most
// knownPerSlot times as many ids as it has slots, so that minted ids cannot
// grow it without bound.
const knownPerSlot = 8

// admit returns nil, or ErrClientCap for a sync that would connect a
// client (isNew: an id the stream does not know) to a stream that knows
// known ids and has connected clients connected. Mirrored in the admission
// part of lua/sync.lua.
func (c Config) admit(isNew, connect bool, known, connected int) error {
	switch {
	case connect && connected >= c.MaxClientsPerStream:
		return ErrClientCap
	case isNew && known >= knownPerSlot*c.MaxClientsPerStream:
		return ErrClientCap
	}
	return nil
}
