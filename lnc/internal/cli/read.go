package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	lance "github.com/lance-go/lance/lnc-client"
)

// pollWait is how long one fetch waits at the end of the log for new
// records.
const pollWait = time.Second

// readSpec says which records readTopic hands out.
type readSpec struct {
	topic  string
	from   start
	follow bool  // keep waiting for new records instead of stopping at the end
	max    int64 // stop after this many records; 0 for no limit
	// warn receives a line about a lost connection while following.
	warn io.Writer
}

// readResult tells where reading began and ended.
type readResult struct {
	// Start is the position the read began at.
	Start lance.Offset
	// Next is the offset just past the last record handed out: where a
	// later read continues.
	Next lance.Offset
	// Count is the number of records handed out.
	Count int64
}

// readTopic reads spec.topic through c, calling fn for each record and
// done after each batch of records (to flush output). Without follow it
// stops at the end of the log as it was when it started; with follow it
// runs until ctx ends, which is then no error.
func readTopic(ctx context.Context, c *lance.Client, timeout time.Duration, spec readSpec, fn func(*lance.Record) error, done func() error) (readResult, error) {
	var res readResult
	cons, err := lance.NewConsumer(c, spec.topic, lance.WithMaxWait(pollWait))
	if err != nil {
		return res, err
	}
	defer cons.Close()

	setup, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	if err := cons.Seek(setup, lance.SeekEnd); err != nil {
		return res, err
	}
	end := cons.Position()
	if spec.from.kind != startLatest {
		if err := cons.Seek(setup, spec.from.seekTarget()); err != nil {
			return res, err
		}
	}
	res.Start, res.Next = cons.Position(), cons.Position()
	if !spec.follow && res.Start > end {
		return res, fmt.Errorf("offset %d is past the end of %s (%d)", res.Start, spec.topic, end)
	}
	warned := false
	for spec.follow || res.Next < end {
		pctx, cancel := context.WithTimeout(ctx, pollWait+timeout)
		recs, err := cons.Poll(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				if spec.follow && errors.Is(ctx.Err(), context.Canceled) {
					return res, nil
				}
				return res, ctx.Err()
			}
			if spec.follow && lance.IsRetryable(err) {
				if !warned && spec.warn != nil {
					fmt.Fprintf(spec.warn, "lnc: %v; retrying\n", err)
					warned = true
				}
				continue
			}
			var cu *lance.CatchingUpError
			if errors.As(err, &cu) {
				return res, fmt.Errorf("offset %d is past the end of %s (%d)", res.Next, spec.topic, cu.End)
			}
			return res, err
		}
		warned = false
		if len(recs) == 0 {
			if !spec.follow {
				break // nothing more came: the end
			}
			continue
		}
		for i := range recs {
			r := &recs[i]
			if !spec.follow && r.Offset >= end {
				return res, done()
			}
			if err := fn(r); err != nil {
				return res, err
			}
			res.Count++
			if i+1 < len(recs) {
				res.Next = recs[i+1].Offset
			} else {
				res.Next = cons.Position()
			}
			if spec.max > 0 && res.Count >= spec.max {
				return res, done()
			}
		}
		if err := done(); err != nil {
			return res, err
		}
	}
	return res, nil
}
