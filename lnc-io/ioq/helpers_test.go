package ioq

import (
	"runtime"
	"testing"
	"time"
)

// checkLeaks fails the test if, once it has finished, more goroutines are
// running than when checkLeaks was called. Tests that use it must not be
// parallel.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// waitUntil polls cond, which reads queue state under its mutex, until it
// holds; it fails the test after a generous timeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// popWaiting and pushWaiting read the waiter counts: a positive count means
// a goroutine has released the mutex and is blocked in its select.
func (q *Queue[T]) popWaiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.popWaiters
}

func (q *Queue[T]) pushWaiting(c Class) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pushWaiters[c]
}

// result is what a goroutine running Push or Pop reports back.
type result[T any] struct {
	item  T
	class Class
	err   error
}

// mustTryPush queues item or fails the test.
func mustTryPush[T any](t *testing.T, q *Queue[T], c Class, item T) {
	t.Helper()
	if err := q.TryPush(c, item); err != nil {
		t.Fatalf("TryPush(%v, %v): %v", c, item, err)
	}
}

// popAll pops with TryPop until the queue is empty.
func popAll[T any](q *Queue[T]) (items []T, classes []Class) {
	for {
		item, c, ok := q.TryPop()
		if !ok {
			return items, classes
		}
		items = append(items, item)
		classes = append(classes, c)
	}
}

// pattern spells a class sequence as a string, one letter per pop.
func pattern(classes []Class) string {
	b := make([]byte, len(classes))
	for i, c := range classes {
		b[i] = "CRB"[c]
	}
	return string(b)
}
