package topiclog

// testSkipSync, set only by tests, makes Sync write without fdatasync. It
// is the negative control of the power-cut tests: with it, they must find
// lost batches, or they prove nothing. Only the writer reads it.
var testSkipSync bool
