package checksum

import "hash/crc32"

// Combine returns the CRC of the concatenation a||b in dialect d, given
// crcA = d.Sum(a), crcB = d.Sum(b) and lenB = len(b), without the bytes.
// It lets a server compute the CRC of a reply made of stored batches from
// their stored CRCs, and send the batches themselves with sendfile.
//
// The method is the one of zlib's crc32_combine: appending lenB zero
// bytes to a multiplies a's CRC register by x^(8·lenB) modulo the
// polynomial; the pre- and post-inversion of both CRCs cancel in the XOR.
// Its cost grows with log2(lenB) multiplications of 32 steps each.
func (d Dialect) Combine(crcA, crcB uint32, lenB uint64) uint32 {
	t := &combineTables[d&1]
	return t.mult(t.xPow8n(lenB), crcA) ^ crcB
}

// combineTable holds x^(2^k) mod P for k = 0..63, in the reflected bit
// order of the CRC register.
type combineTable struct {
	poly uint32
	x2k  [64]uint32
}

// combineTables is indexed by Dialect&1: IEEE (1) and Castagnoli (2).
var combineTables = [2]combineTable{
	newCombineTable(crc32.Castagnoli),
	newCombineTable(crc32.IEEE),
}

func newCombineTable(poly uint32) combineTable {
	t := combineTable{poly: poly}
	p := uint32(1) << 30 // x^1
	t.x2k[0] = p
	for k := 1; k < len(t.x2k); k++ {
		p = t.mult(p, p)
		t.x2k[k] = p
	}
	return t
}

// mult returns a·b modulo the polynomial (reflected: bit 31 is x^0).
func (t *combineTable) mult(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ t.poly
		} else {
			b >>= 1
		}
	}
	return p
}

// xPow8n returns x^(8·n) modulo the polynomial.
func (t *combineTable) xPow8n(n uint64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; k++ {
		if n&1 != 0 {
			p = t.mult(t.x2k[k%64], p)
		}
		n >>= 1
	}
	return p
}
