package backend

import "github.com/lance-go/lance/lnc-io/vfs"

// The four helpers below route a backend's writes and syncs through the
// file's vfs.Observer when it has one (the fault-injecting file system),
// and cost a type assertion otherwise.

// beforeWrite returns how many of n bytes at off may be written and the
// error to report once they are.
func beforeWrite(f vfs.File, off int64, n int) (int, error) {
	if o, ok := f.(vfs.Observer); ok {
		allowed, err := o.BeforeWrite(off, n)
		return min(max(allowed, 0), n), err
	}
	return n, nil
}

func afterWrite(f vfs.File, off int64, n int) {
	if o, ok := f.(vfs.Observer); ok && n > 0 {
		o.AfterWrite(off, n)
	}
}

func beforeSync(f vfs.File) error {
	if o, ok := f.(vfs.Observer); ok {
		return o.BeforeSync()
	}
	return nil
}

func afterSync(f vfs.File) {
	if o, ok := f.(vfs.Observer); ok {
		o.AfterSync()
	}
}

// trimBufs returns the prefix of bufs holding the first n bytes, appended
// to dst (the last slice may be cut short).
func trimBufs(dst, bufs [][]byte, n int) [][]byte {
	for _, b := range bufs {
		if n <= 0 {
			break
		}
		if len(b) > n {
			b = b[:n]
		}
		if len(b) > 0 {
			dst = append(dst, b)
		}
		n -= len(b)
	}
	return dst
}

// advance drops the first n bytes of iov in place and returns what is
// left. iov must be the backend's own slice: its elements are re-sliced.
func advance(iov [][]byte, n int) [][]byte {
	for n > 0 && len(iov) > 0 {
		if n < len(iov[0]) {
			iov[0] = iov[0][n:]
			return iov
		}
		n -= len(iov[0])
		iov = iov[1:]
	}
	return iov
}

func totalLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
