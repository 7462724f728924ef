package server

import (
	"math/bits"
	"sync"
)

// bytePool recycles byte slices in power-of-two size classes from 512 B to
// 32 MiB, so that the ingest path copies payloads without allocating once
// warm. Slices are handed out as pointers to keep sync.Pool from
// allocating on Put.
type bytePool struct {
	classes [maxClass - minClass + 1]sync.Pool
}

const (
	minClass = 9  // 512 B
	maxClass = 25 // 32 MiB
)

func class(n int) int {
	if n <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(n - 1))
}

// get returns a slice of length n; n above the largest class is allocated
// unpooled.
func (p *bytePool) get(n int) *[]byte {
	c := class(n)
	if c > maxClass {
		b := make([]byte, n)
		return &b
	}
	if v := p.classes[c-minClass].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// put returns b to its class; slices of foreign capacities are dropped.
func (p *bytePool) put(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	if c < 1<<minClass || c > 1<<maxClass || c&(c-1) != 0 {
		return
	}
	*b = (*b)[:0]
	p.classes[bits.Len(uint(c))-1-minClass].Put(b)
}
