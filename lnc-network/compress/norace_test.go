//go:build !race

package compress

// raceEnabled is true when the race detector is on; allocation counts are
// then unreliable: sync.Pool drops items at random and the detector
// allocates for its own bookkeeping.
const raceEnabled = false
