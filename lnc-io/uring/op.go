package uring

import "strconv"

// Op is an io_uring operation code (enum io_uring_op in the kernel's
// include/uapi/linux/io_uring.h). The values are kernel ABI.
type Op uint8

// The operations this package prepares. Their numbers are fixed by the
// kernel ABI; READ and WRITE need Linux 5.6, the others 5.1.
const (
	// OpNop does nothing and completes with res 0 (IORING_OP_NOP).
	OpNop Op = 0
	// OpReadv is preadv2 (IORING_OP_READV).
	OpReadv Op = 1
	// OpWritev is pwritev2 (IORING_OP_WRITEV).
	OpWritev Op = 2
	// OpFsync is fsync or, with the datasync flag, fdatasync
	// (IORING_OP_FSYNC).
	OpFsync Op = 3
	// OpReadFixed reads into a registered buffer (IORING_OP_READ_FIXED).
	OpReadFixed Op = 4
	// OpWriteFixed writes from a registered buffer (IORING_OP_WRITE_FIXED).
	OpWriteFixed Op = 5
	// OpRead is pread into one buffer (IORING_OP_READ).
	OpRead Op = 22
	// OpWrite is pwrite from one buffer (IORING_OP_WRITE).
	OpWrite Op = 23
)

// String returns the kernel's name for the operations above, and "op(N)"
// for any other value.
func (op Op) String() string {
	switch op {
	case OpNop:
		return "NOP"
	case OpReadv:
		return "READV"
	case OpWritev:
		return "WRITEV"
	case OpFsync:
		return "FSYNC"
	case OpReadFixed:
		return "READ_FIXED"
	case OpWriteFixed:
		return "WRITE_FIXED"
	case OpRead:
		return "READ"
	case OpWrite:
		return "WRITE"
	}
	return "op(" + strconv.Itoa(int(op)) + ")"
}

// RequiredOps returns the operations the storage engine's io_uring backend
// uses, in a new slice; Available checks that the kernel supports each.
func RequiredOps() []Op {
	return []Op{OpNop, OpReadv, OpWritev, OpFsync, OpReadFixed, OpWriteFixed, OpRead, OpWrite}
}
