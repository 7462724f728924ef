package compress_test

import (
	"fmt"

	"github.com/lance-go/lance/lnc-network/compress"
)

func Example() {
	payload := []byte("hello")

	env, err := compress.Append(nil, compress.None, payload)
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", env)

	env, err = compress.Append(env[:0], compress.LZ4, payload)
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", env)

	out, err := compress.Decode(nil, env, 1<<20)
	fmt.Printf("%s %v\n", out, err)
	// Output:
	// 00 05 00 00 00 68 65 6c 6c 6f
	// 01 05 00 00 00 05 00 00 00 50 68 65 6c 6c 6f
	// hello <nil>
}
