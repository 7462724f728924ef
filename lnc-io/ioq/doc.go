// Package ioq is the I/O priority queue between the storage engine and its
// I/O backends. Producers (the group-commit path, replication, consumer
// reads, retention and compaction) push requests tagged with a Class; a
// backend (the io_uring ring goroutine, or each pwritev2 worker) pops them,
// one at a time with Pop or many at once with PopBatch, and submits them.
//
// # Classes
//
// ClassCommit carries group-commit writes and fsyncs of the ingest path and
// replication writes: producers wait on them for their acks. ClassRead
// carries consumer reads. ClassBackground carries retention deletes,
// compaction and index rebuilds. Each class has its own bounded FIFO: when
// a class is full, Push blocks and TryPush fails with ErrFull, without
// holding up the other classes.
//
// # Scheduling
//
// The queue serves classes by weighted round robin with credits. Each class
// c has a weight w(c) (by default 16, 4 and 1). A round starts with every
// class holding w(c) credits; every pop takes the head of the highest class
// that is non-empty and still has credit, and spends one credit of it. When
// no non-empty class has credit left, a new round starts: every class's
// credit is reset to its weight (unused credit is not carried over). From
// this rule:
//
//   - Preference: a higher class is always served before a lower one while
//     it has credit; with the defaults, 16 commit requests go before any
//     read, and only 5 pops in a round of 21 go to the lower classes.
//   - Share: no class is popped more than w(c) times in a round, and a class
//     that stays non-empty for a whole round is popped exactly w(c) times in
//     it. While every class stays busy, each round is W = Σw pops long and
//     the shares are exactly w(c)/W (16/21, 4/21, 1/21 by default), in the
//     order 16 commit, 4 read, 1 background.
//   - Bounded wait: while class c is non-empty, at most
//     Σ_{d≠c} w(d) + Σ_{d above c} w(d) consecutive pops go to other
//     classes: if c has credit, only higher classes with credit go first,
//     and no round can end; if it has none, the round ends once the other
//     classes' remaining credit is spent, and in the next round only the
//     higher classes' credit goes before c. With the defaults that is 5
//     pops for commit, 33 for read and 40 for background, whatever the
//     load of the others.
//
// The scheduler is work-conserving (a pop never fails while any class holds
// an item) and deterministic: the order of pops depends only on the order
// of pushes and pops, never on timing. Within a class, order is FIFO.
//
// # Waiting
//
// State lives under one mutex and is changed only there; nobody blocks
// while holding it. A goroutine that must wait (a consumer on an empty
// queue, a producer on a full class) registers itself in a waiter count,
// releases the mutex and waits in a select on a wake-up channel and on its
// context. There is one wake-up channel for consumers and one per class for
// producers, each with a buffer of one: a wake-up token is sent, without
// blocking, only when the count shows a waiter, and a woken goroutine that
// leaves work behind for another waiter (items still queued, room still
// free) passes the token on. One token therefore suffices for any number of
// waiters, a token sent before its receiver reaches the select is not lost,
// and a waiter whose context ends leaves the token in the channel for the
// next one. sync.Cond was not used because its Wait cannot be combined with
// a context without a helper goroutine per wait; per-waiter channels were
// not used because they need a waiter list and an allocation per wait.
// Close closes the wake-up channels, which wakes every waiter at once.
//
// The queue starts no goroutines. Push, TryPush, Pop, TryPop and PopBatch
// (given a dst with room) allocate nothing, except for the error values of
// a context that ended or an invalid class.
package ioq
