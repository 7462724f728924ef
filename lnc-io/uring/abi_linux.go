//go:build linux

package uring

import (
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// SQE is a submission queue entry, struct io_uring_sqe of the kernel ABI:
// 64 bytes, laid out field for field as the kernel reads it. Fields whose
// kernel counterpart is a union carry the name of the member this package
// uses; the comment lists the others.
//
// An *SQE from GetSQE points into memory shared with the kernel; it may be
// written until the next Submit or SubmitAndWait and must not be kept after.
type SQE struct {
	// Opcode is the operation.
	Opcode Op
	// Flags are IOSQE_* flags (SQEIOLink, SQEIODrain, ...).
	Flags SQEFlags
	// IOPrio is the I/O priority, as for ioprio_set(2).
	IOPrio uint16
	// Fd is the file descriptor, or with SQEFixedFile the index of a
	// file registered with RegisterFiles.
	Fd int32
	// Off is the file offset (union: addr2, cmd_op).
	Off uint64
	// Addr is the buffer or iovec array address (union: splice_off_in).
	Addr uint64
	// Len is the buffer length in bytes, or the number of iovecs.
	Len uint32
	// OpFlags holds the per-operation flags (union: rw_flags,
	// fsync_flags, poll32_events, ...).
	OpFlags uint32
	// UserData is returned unchanged in the operation's CQE.
	UserData uint64
	// BufIndex is the registered buffer index for the fixed
	// operations (union: buf_group).
	BufIndex uint16
	// Personality selects credentials registered with the ring; 0 is
	// the submitter's own.
	Personality uint16
	// FileIndex is the direct-descriptor slot for operations that
	// create one (union: splice_fd_in, optlen, addr_len).
	FileIndex uint32
	// Addr3 is a third address some operations use (union: optval).
	Addr3 uint64
	_     uint64 // __pad2
}

// CQE is a completion queue entry, struct io_uring_cqe of the kernel ABI
// (16 bytes; this package does not set up rings with 32-byte CQEs).
type CQE struct {
	// UserData is the SQE's UserData.
	UserData uint64
	// Res is the operation's result: what the equivalent system call
	// would return (bytes transferred, 0), or a negated errno.
	Res int32
	// Flags are IORING_CQE_F_* flags; none concern the operations
	// prepared by this package.
	Flags uint32
}

// Err returns nil when Res is zero or positive, and the errno -Res as a
// syscall.Errno otherwise, so that errors.Is(cqe.Err(), syscall.ECANCELED)
// and the like work.
func (c CQE) Err() error {
	if c.Res >= 0 {
		return nil
	}
	return syscall.Errno(-c.Res)
}

// SQEFlags are the IOSQE_* flags of SQE.Flags.
type SQEFlags uint8

// SQE flags (IOSQE_*). They may be combined.
const (
	// SQEFixedFile (IOSQE_FIXED_FILE): SQE.Fd is an index into the files
	// registered with RegisterFiles, not a file descriptor.
	SQEFixedFile SQEFlags = 1 << 0
	// SQEIODrain (IOSQE_IO_DRAIN): the operation starts only after every
	// operation submitted before it has completed, and operations
	// submitted after it wait for it.
	SQEIODrain SQEFlags = 1 << 1
	// SQEIOLink (IOSQE_IO_LINK): the next SQE in the ring starts only
	// after this one completes successfully. If this one fails (or
	// transfers fewer bytes than asked), every later member of the chain
	// completes with -ECANCELED. The chain ends at the first SQE without
	// the flag.
	SQEIOLink SQEFlags = 1 << 2
	// SQEIOHardlink (IOSQE_IO_HARDLINK): like SQEIOLink, but the next SQE
	// runs even if this one fails.
	SQEIOHardlink SQEFlags = 1 << 3
	// SQEAsync (IOSQE_ASYNC): skip the inline attempt and hand the
	// operation to a kernel worker thread at once.
	SQEAsync SQEFlags = 1 << 4
)

// fsyncDatasync is IORING_FSYNC_DATASYNC, in SQE.OpFlags of OpFsync.
const fsyncDatasync = 1 << 0

// SQRingOffsets is struct io_sqring_offsets: the byte offset, inside the
// SQ ring mapping, of each field of the submission ring.
type SQRingOffsets struct {
	Head        uint32 // index of the oldest SQE the kernel has not consumed
	Tail        uint32 // index one past the newest SQE published to the kernel
	RingMask    uint32 // entries - 1
	RingEntries uint32 // number of slots
	Flags       uint32 // IORING_SQ_* flags the kernel sets
	Dropped     uint32 // count of invalid SQEs the kernel skipped
	Array       uint32 // the SQE index array
	Resv1       uint32 // reserved
	UserAddr    uint64 // ring memory address with IORING_SETUP_NO_MMAP (unused here)
}

// CQRingOffsets is struct io_cqring_offsets: the byte offset, inside the
// CQ ring mapping, of each field of the completion ring.
type CQRingOffsets struct {
	Head        uint32 // index of the oldest CQE not consumed by us
	Tail        uint32 // index one past the newest CQE the kernel posted
	RingMask    uint32 // entries - 1
	RingEntries uint32 // number of slots
	Overflow    uint32 // count of CQEs lost to overflow (stays 0 with FeatNoDrop)
	CQEs        uint32 // the CQE array
	Flags       uint32 // IORING_CQ_* flags we may set
	Resv1       uint32 // reserved
	UserAddr    uint64 // ring memory address with IORING_SETUP_NO_MMAP (unused here)
}

// Params is struct io_uring_params, the argument of io_uring_setup: the
// caller fills Flags (and CQEntries with IORING_SETUP_CQSIZE), the kernel
// fills in the rest.
type Params struct {
	SQEntries    uint32        // submission queue size, a power of two
	CQEntries    uint32        // completion queue size, a power of two
	Flags        uint32        // IORING_SETUP_* flags in force
	SQThreadCPU  uint32        // CPU of the SQPOLL thread (unused here)
	SQThreadIdle uint32        // SQPOLL idle time in ms (unused here)
	Features     Features      // IORING_FEAT_* bits of the running kernel
	WQFd         uint32        // ring whose workers to share (unused here)
	Resv         [3]uint32     // reserved, zero
	SQOff        SQRingOffsets // layout of the SQ ring mapping
	CQOff        CQRingOffsets // layout of the CQ ring mapping
}

// Compile-time layout checks: each pair fails to compile (negative array
// length) unless the Go type has exactly the kernel's size. The tests check
// every field offset as well.
var (
	_ [unsafe.Sizeof(SQE{}) - 64]struct{} // unsafe.Sizeof only reads a constant size.
	_ [64 - unsafe.Sizeof(SQE{})]struct{}
	_ [unsafe.Sizeof(CQE{}) - 16]struct{}
	_ [16 - unsafe.Sizeof(CQE{})]struct{}
	_ [unsafe.Sizeof(SQRingOffsets{}) - 40]struct{}
	_ [40 - unsafe.Sizeof(SQRingOffsets{})]struct{}
	_ [unsafe.Sizeof(CQRingOffsets{}) - 40]struct{}
	_ [40 - unsafe.Sizeof(CQRingOffsets{})]struct{}
	_ [unsafe.Sizeof(Params{}) - 120]struct{}
	_ [120 - unsafe.Sizeof(Params{})]struct{}
	_ [unsafe.Sizeof(probeHeader{}) - 16]struct{}
	_ [16 - unsafe.Sizeof(probeHeader{})]struct{}
	_ [unsafe.Sizeof(probeOp{}) - 8]struct{}
	_ [8 - unsafe.Sizeof(probeOp{})]struct{}
)

// Features is the features word io_uring_setup returns (IORING_FEAT_*).
type Features uint32

// Feature bits, each named after its IORING_FEAT_ constant and followed by
// the kernel release that introduced it.
const (
	// FeatSingleMMap: SQ and CQ rings share one mapping (5.4).
	FeatSingleMMap Features = 1 << 0
	// FeatNoDrop: completions are never dropped; when the CQ ring is
	// full they wait in the kernel until there is room (5.5).
	FeatNoDrop Features = 1 << 1
	// FeatSubmitStable: data for async work (iovec arrays included) has
	// been consumed by the time the SQE is consumed (5.5).
	FeatSubmitStable Features = 1 << 2
	// FeatRWCurPos: offset -1 means the file position for reads and
	// writes (5.6).
	FeatRWCurPos Features = 1 << 3
	// FeatCurPersonality: requests run with the submitter's credentials
	// as of submission (5.6).
	FeatCurPersonality Features = 1 << 4
	// FeatFastPoll: internal polling for sockets and pipes (5.7).
	FeatFastPoll Features = 1 << 5
	// FeatPoll32Bits: 32-bit poll masks (5.9).
	FeatPoll32Bits Features = 1 << 6
	// FeatSQPollNonfixed: SQPOLL works without registered files (5.11).
	FeatSQPollNonfixed Features = 1 << 7
	// FeatExtArg: io_uring_enter takes an extended argument (5.11).
	FeatExtArg Features = 1 << 8
	// FeatNativeWorkers: async workers are threads of the submitting
	// process (5.12).
	FeatNativeWorkers Features = 1 << 9
	// FeatRsrcTags: registered resources may carry tags (5.13).
	FeatRsrcTags Features = 1 << 10
	// FeatCQESkip: IOSQE_CQE_SKIP_SUCCESS is supported (5.17).
	FeatCQESkip Features = 1 << 11
	// FeatLinkedFile: files of linked requests are resolved when the
	// request starts, not at submission (5.17).
	FeatLinkedFile Features = 1 << 12
	// FeatRegRegRing: the ring fd itself can be registered (6.3).
	FeatRegRegRing Features = 1 << 13
	// FeatRecvSendBundle: bundled socket sends and receives (6.10).
	FeatRecvSendBundle Features = 1 << 14
	// FeatMinTimeout: waits take a minimum batch timeout (6.12).
	FeatMinTimeout Features = 1 << 15
	// FeatRWAttr: reads and writes take extra attributes (6.14).
	FeatRWAttr Features = 1 << 16
	// FeatNoIOWait: waits can opt out of iowait accounting (6.15).
	FeatNoIOWait Features = 1 << 17
)

var featureNames = [...]string{
	"SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "RW_CUR_POS", "CUR_PERSONALITY",
	"FAST_POLL", "POLL_32BITS", "SQPOLL_NONFIXED", "EXT_ARG", "NATIVE_WORKERS",
	"RSRC_TAGS", "CQE_SKIP", "LINKED_FILE", "REG_REG_RING", "RECVSEND_BUNDLE",
	"MIN_TIMEOUT", "RW_ATTR", "NO_IOWAIT",
}

// Has reports whether every bit of want is set in f.
func (f Features) Has(want Features) bool { return f&want == want }

// String lists the set bits by kernel name, for logs: "NODROP|EXT_ARG|...".
// Bits newer than this package are shown as "bitN".
func (f Features) String() string {
	var names []string
	for i := range 32 {
		if f&(1<<i) == 0 {
			continue
		}
		if i < len(featureNames) {
			names = append(names, featureNames[i])
		} else {
			names = append(names, "bit"+strconv.Itoa(i))
		}
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}

// Kernel ABI constants used internally, named after their
// include/uapi/linux/io_uring.h counterparts.
const (
	setupCQSize       = 1 << 3     // IORING_SETUP_CQSIZE
	setupCoopTaskrun  = 1 << 8     // IORING_SETUP_COOP_TASKRUN
	setupTaskrunFlag  = 1 << 9     // IORING_SETUP_TASKRUN_FLAG
	setupSingleIssuer = 1 << 12    // IORING_SETUP_SINGLE_ISSUER
	setupDeferTaskrun = 1 << 13    // IORING_SETUP_DEFER_TASKRUN
	enterGetEvents    = 1 << 0     // IORING_ENTER_GETEVENTS
	sqCQOverflow      = 1 << 1     // IORING_SQ_CQ_OVERFLOW, in the SQ ring flags
	sqTaskrun         = 1 << 2     // IORING_SQ_TASKRUN, in the SQ ring flags
	offSQRing         = 0          // IORING_OFF_SQ_RING, mmap offset
	offCQRing         = 0x8000000  // IORING_OFF_CQ_RING
	offSQEs           = 0x10000000 // IORING_OFF_SQES
	registerBuffers   = 0          // IORING_REGISTER_BUFFERS
	unregisterBuffers = 1          // IORING_UNREGISTER_BUFFERS
	registerFiles     = 2          // IORING_REGISTER_FILES
	unregisterFiles   = 3          // IORING_UNREGISTER_FILES
	registerProbe     = 8          // IORING_REGISTER_PROBE
	probeOpSupported  = 1 << 0     // IO_URING_OP_SUPPORTED
	probeMaxOps       = 256        // the op field is a __u8
)

// probeHeader is struct io_uring_probe without its flexible ops array.
type probeHeader struct {
	LastOp uint8
	OpsLen uint8
	Resv   uint16
	Resv2  [3]uint32
}

// probeOp is struct io_uring_probe_op.
type probeOp struct {
	Op    uint8
	Resv  uint8
	Flags uint16
	Resv2 uint32
}

// probeBuf is struct io_uring_probe with room for every possible opcode.
type probeBuf struct {
	probeHeader
	Ops [probeMaxOps]probeOp
}
