// Package faultfs is a fault-injecting vfs.FS for tests. It wraps another
// file system (normally vfs.OS() on a t.TempDir()), so files are real and
// have real descriptors that I/O backends write to directly; the backends'
// vfs.Observer calls and the files' own methods go through one model that
// knows what is durable. On demand, or at points drawn from a seed, it
// cuts the power, tears file tails, flips bits, runs out of space and fails
// writes and fsyncs.
//
// # Durability model
//
// The state after a power cut is exactly the durable state, defined as
// follows (KeepUnsynced mode relaxes rule 1, see SetKeepUnsynced).
//
//  1. File content and size. A file's durable image changes only when a
//     sync of that file succeeds (File.Sync, or BeforeSync then AfterSync):
//     the bytes written before the sync's BeforeSync, and truncations made
//     before it, become durable, with the content the file has at
//     AfterSync; the durable size becomes the size the file had at
//     BeforeSync (at most its size at AfterSync). Writes admitted after
//     BeforeSync wait for the next sync. A sync of any descriptor of the
//     file covers writes made through every descriptor. A file that was
//     never synced is empty. Writes and truncations not followed by a good
//     sync are undone by a power cut, including truncations (the old size
//     and bytes come back).
//  2. Failed syncs. When a sync fails (injected EIO, or a real error on
//     the File.Sync path), the bytes written since the previous sync
//     attempt (those it was the first to cover; earlier ones belong to
//     syncs still in flight) are lost: a power cut reverts them to their
//     previous durable content (or zeros where the file grew) even if a
//     later sync succeeds, unless they are written again after the
//     failure. Until the cut, reads still return them. Size changes are
//     not lost: the next good sync makes the size durable.
//  3. Directory entries. Create, Rename, Remove, RemoveAll and MkdirAll
//     change a directory's entries; SyncDir of a directory makes its
//     current entries durable. An entry's durable value is what it was at
//     the last SyncDir of its directory (or, if the directory was not
//     synced since the FS first saw it, what it was then). So a created
//     file whose directory was not synced disappears; a rename not made
//     durable is undone (a rename between two directories is durable in
//     each directory separately: syncing only the new one leaves the file
//     under both names, as two independent copies); a removal not made
//     durable is undone with the file's durable content; a directory
//     whose creation was not made durable disappears with everything in
//     it. Content follows the file, not the name: syncing a file that was
//     renamed or removed still changes the image its durable entries show.
//  4. Files and directories that existed before the FS first touched them
//     are durable as found. Only what the FS has seen is tracked; all
//     changes must go through it.
//
// # Power cycles
//
// A power cut (PowerOff, CutPower, or the operation chosen by
// CutPowerAfter) stops admitting operations: while the power is off, every
// operation of every file and of the FS fails with an error wrapping
// ErrPoweredOff. Writes and syncs already admitted may still report back,
// and count, as if the power had failed just after them; in particular a
// sync whose AfterSync (or File.Sync) reports success is durable. PowerOn
// then rewrites the disk to the durable state (only the ranges that
// differ) and powers on; files opened before stay dead (every call fails
// with ErrPoweredOff; Close still releases the descriptor) and the FS
// serves a new "process". CutPower is PowerOff followed by PowerOn.
// LastCut reports what the last cycle undid.
//
// # Injected errors
//
// Every error made up by the package wraps ErrInjected, and the errno it
// stands for: syscall.EIO for FailWrites, FailSyncs and FailSyncDirs
// (another errno with Schedule.WithErrno), syscall.ENOSPC for
// SetSpaceLimit. TearTail and FlipBit damage a file in place (its live
// content and its durable image alike); they are not operations of the
// process and never fail it by themselves.
//
// # Use
//
// A crash-point test runs the code under test on the FS until an
// operation fails with ErrPoweredOff, stops it, powers on and checks what
// survived:
//
//	fsys := faultfs.New(vfs.OS(), seed)
//	n := fsys.CutPowerAfterRandom(500)
//	// ... run the engine on fsys in t.TempDir() until ErrPoweredOff ...
//	// ... close it (its errors are expected) ...
//	if err := fsys.PowerOn(); err != nil {
//		t.Fatal(err)
//	}
//	// ... reopen on fsys; on a failed check, log n and fsys.LastCut() ...
//
// Determinism: the same seed and the same sequence of calls give the same
// faults; concurrent callers make the sequence depend on scheduling.
//
// # O_DIRECT handles
//
// OpenDirect opens an existing file again, as vfs.DirectOpener describes:
// the handle is one more descriptor of the same modelled file, so writes
// through it, syncs through any handle, power cuts and injected faults
// behave exactly as for the file's other handles. It enforces O_DIRECT's
// rules as strictly as any disk does: the offset, length and memory
// address of each read and write (including the writes a backend issues on
// its descriptor, which it checks through vfs.WriteChecker) must be
// multiples of vfs.DirectAlign, or the call fails with syscall.EINVAL
// wrapping ErrMisaligned (not ErrInjected: it is the kernel's answer, not
// a fault). A write cut short by the space limit stops at a block
// boundary. The descriptor is a real O_DIRECT one where the inner file
// system offers it, and an ordinary one elsewhere (the rules are enforced
// all the same).
//
// # Limits of the model
//
// Renaming a directory is refused (ErrDirRename). Space is counted as the
// sum of file sizes, not blocks. PowerOn waits up to a second for admitted
// syncs (BeforeSync without AfterSync yet) and counts those that never
// reported back in Stats.AbandonedSyncs. A file with bytes admitted by
// BeforeWrite and not yet reported by AfterWrite gets a new inode at
// PowerOn, so that a late write of the dead process lands in the old,
// unlinked one and cannot touch the restored state.
package faultfs
