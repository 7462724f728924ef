package ioq_test

import (
	"context"
	"fmt"

	"github.com/lance-go/lance/lnc-io/ioq"
)

// A backend takes requests in batches; commit writes come first, but the
// read and the retention delete queued earlier get their share.
func Example() {
	q := ioq.New[string](ioq.Config{Weight: [ioq.NumClasses]int{4, 2, 1}})
	q.TryPush(ioq.ClassBackground, "delete segment 17")
	q.TryPush(ioq.ClassRead, "read topic a")
	for i := range 6 {
		q.TryPush(ioq.ClassCommit, fmt.Sprintf("write batch %d", i))
	}
	q.Close() // no more requests: drain and stop

	ctx := context.Background()
	buf := make([]string, 0, 4)
	for {
		batch, err := q.PopBatch(ctx, buf[:0], 4)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(batch)
	}
	// Output:
	// [write batch 0 write batch 1 write batch 2 write batch 3]
	// [read topic a delete segment 17 write batch 4 write batch 5]
	// ioq: queue closed
}

func ExampleParseClass() {
	c, err := ioq.ParseClass("background")
	fmt.Println(c, err)
	_, err = ioq.ParseClass("urgent")
	fmt.Println(err)
	// Output:
	// background <nil>
	// ioq: unknown class: "urgent" (want commit, read or background)
}
