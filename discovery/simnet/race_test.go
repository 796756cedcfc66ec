//go:build race

package simnet

// The race detector slows the simulator about thirtyfold; the big sweeps run
// fewer seeds under it.
func init() { raceEnabled = true }
