package media

import "github.com/pion/webrtc/v4"

// Path names how the call's media travels, by the type of the local ICE
// candidate in the selected pair: "host" (a direct address of this machine),
// "srflx" (this node's address as a NAT maps it, learnt through STUN),
// "prflx" (a mapping learnt from the partner's checks) or "relay" (through a
// TURN server). Empty until a pair is selected.
func (s *Session) Path() string {
	p, _ := s.path.Load().(string)
	return p
}

// watchPath keeps Path up to date from the ICE transport's selected pair.
// Asking pion for the pair instead can wait: its ICE gatherer holds a lock
// while the agent closes, which at a call's end on a loaded machine took
// 400 ms, and the node asks from its loop.
func (s *Session) watchPath() {
	sctp := s.pc.SCTP()
	if sctp == nil || sctp.Transport() == nil {
		return
	}
	sctp.Transport().ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
		if pair != nil && pair.Local != nil && pair.Remote != nil {
			s.path.Store(pathName(pair.Local.Typ, pair.Remote.Typ))
		}
	})
}

// pathName reports a relayed path if either side relays: media then crosses
// a TURN server even when this side's own candidate is direct.
func pathName(local, remote webrtc.ICECandidateType) string {
	if local == webrtc.ICECandidateTypeRelay || (remote == webrtc.ICECandidateTypeRelay) {
		return "relay"
	}
	return local.String()
}
