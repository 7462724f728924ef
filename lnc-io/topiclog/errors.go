package topiclog

import "io/fs"

// errNotExist is what removing a missing file wraps, on every vfs.FS.
var errNotExist = fs.ErrNotExist
