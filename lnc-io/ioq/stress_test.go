package ioq

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// tagged is a stress-test item: who pushed it, its sequence number there,
// and the class it was pushed to.
type tagged struct {
	producer, seq int
	class         Class
}

// Many producers push into small classes (so Push waits often) while
// consumers take items with every method, one of them with contexts that
// keep timing out (so wake-ups meet cancelled waiters). Every item must
// come out exactly once; each consumer must see each producer's items of a
// class in push order; Close must end every consumer.
func TestStress(t *testing.T) {
	checkLeaks(t)
	const producers, consumers, perProducer = 4, 4, 1500
	q := New[tagged](Config{Capacity: [NumClasses]int{8, 4, 2}})
	ctx := context.Background()

	var producing sync.WaitGroup
	for p := range producers {
		producing.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 7))
			for seq := range perProducer {
				it := tagged{p, seq, Class(rng.IntN(NumClasses))}
				if seq%4 != 0 {
					if err := q.Push(ctx, it.class, it); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				for {
					err := q.TryPush(it.class, it)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrFull) {
						t.Error(err)
						return
					}
					runtime.Gosched()
				}
			}
		})
	}

	got := make([][]tagged, consumers)
	var consuming sync.WaitGroup
	for k := range consumers {
		consuming.Go(func() {
			buf := make([]tagged, 0, 16)
			take := func(it tagged, c Class) {
				if c != it.class {
					t.Errorf("item pushed to %v popped as %v", it.class, c)
				}
				got[k] = append(got[k], it)
			}
			for i := 0; ; i++ {
				switch k % 4 {
				case 0:
					it, c, err := q.Pop(ctx)
					if errors.Is(err, ErrClosed) {
						return
					}
					take(it, c)
				case 1:
					b, err := q.PopBatch(ctx, buf[:0], 1+i%16)
					if errors.Is(err, ErrClosed) {
						return
					}
					got[k] = append(got[k], b...)
				case 2:
					tctx, cancel := context.WithTimeout(ctx, 50*time.Microsecond)
					it, c, err := q.Pop(tctx)
					cancel()
					switch {
					case errors.Is(err, ErrClosed):
						return
					case errors.Is(err, context.DeadlineExceeded):
					case err != nil:
						t.Error(err)
						return
					default:
						take(it, c)
					}
				case 3:
					it, c, ok := q.TryPop()
					if !ok {
						if it, c, err := q.Pop(ctx); errors.Is(err, ErrClosed) {
							return
						} else {
							take(it, c)
						}
						continue
					}
					take(it, c)
				}
			}
		})
	}

	producing.Wait()
	q.Close()
	consuming.Wait()

	var seen [producers][perProducer]int
	total := 0
	for k, items := range got {
		// last[p][c] is the last sequence number of producer p, class c
		// that consumer k saw.
		var last [producers][NumClasses]int
		for p := range last {
			for c := range last[p] {
				last[p][c] = -1
			}
		}
		for _, it := range items {
			seen[it.producer][it.seq]++
			if it.seq <= last[it.producer][it.class] {
				t.Fatalf("consumer %d saw producer %d's %v item %d after %d", k, it.producer, it.class, it.seq, last[it.producer][it.class])
			}
			last[it.producer][it.class] = it.seq
		}
		total += len(items)
	}
	for p := range seen {
		for seq, n := range seen[p] {
			if n != 1 {
				t.Fatalf("producer %d item %d delivered %d times", p, seq, n)
			}
		}
	}
	var pushed, popped uint64
	for _, st := range q.Stats().Classes {
		pushed += st.Pushed
		popped += st.Popped
	}
	if total != producers*perProducer || pushed != uint64(total) || popped != uint64(total) || q.Len() != 0 {
		t.Fatalf("delivered %d, pushed %d, popped %d, left %d; want %d each and 0 left", total, pushed, popped, q.Len(), producers*perProducer)
	}
	for k := range got {
		t.Logf("consumer %d took %d items", k, len(got[k]))
	}
}
