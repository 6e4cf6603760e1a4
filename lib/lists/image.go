package lists

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"
)

// The compiled image of a list, little-endian:
//
//	magic    8 bytes "mflist\x00\x03"
//	source   5 x u64: size, mtime ns, ctime ns, inode, device
//	compiled u64: when the source began to be read, ns
//	def      u32 length, then the directives as text
//	ipv4     u32 count, then (first u32, last u32, line u32) ranges
//	ipv6     u32 count, then (first [16], last [16], line u32) ranges
//	keys     u32 count n, (n+1) u32 offsets into the blob, n u32 lines, blob
//
// Address ranges are disjoint and sorted: nested networks are flattened so
// that the most specific entry owns its part of the space, and a lookup is
// one binary search. Keys (kind byte + text) are sorted bytewise. The image
// is read in place, from memory or from a mapped cache file.
var magic = []byte("mflist\x00\x03")

// source identifies the list file an image was compiled from.
type source struct{ size, mtime, ctime, ino, dev uint64 }

const headerLen = 8 + 6*8

// u128 is an address as a number, IPv4 in the low 32 bits.
type u128 struct{ hi, lo uint64 }

func addrNum(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (x u128) cmp(y u128) int {
	if c := cmp.Compare(x.hi, y.hi); c != 0 {
		return c
	}
	return cmp.Compare(x.lo, y.lo)
}

func (x u128) inc() u128 {
	if x.lo == ^uint64(0) {
		return u128{x.hi + 1, 0}
	}
	return u128{x.hi, x.lo + 1}
}

func (x u128) dec() u128 {
	if x.lo == 0 {
		return u128{x.hi - 1, ^uint64(0)}
	}
	return u128{x.hi, x.lo - 1}
}

type span struct {
	first, last u128
	line        uint32
}

// prefixSpan is the range of addresses in p. IPv4 is numbered in its own
// 32-bit space so that its ranges store in 12 bytes.
func prefixSpan(p netip.Prefix) span {
	first := p.Masked().Addr()
	var last netip.Addr
	if first.Is4() {
		b := first.As4()
		v := binary.BigEndian.Uint32(b[:]) | (uint32(1)<<(32-p.Bits()) - 1)
		if p.Bits() == 0 {
			v = ^uint32(0)
		}
		return span{first: u128{0, uint64(binary.BigEndian.Uint32(b[:]))}, last: u128{0, uint64(v)}}
	}
	b := first.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	last = netip.AddrFrom16(b)
	return span{first: addrNum(first), last: addrNum(last)}
}

// flatten turns possibly nested ranges into disjoint ones in which the
// innermost range wins; among equal ranges the first line wins. Network
// ranges either nest or are apart, never partly overlap.
func flatten(in []span) []span {
	slices.SortFunc(in, func(a, b span) int {
		if c := a.first.cmp(b.first); c != 0 {
			return c
		}
		if c := b.last.cmp(a.last); c != 0 { // wider first
			return c
		}
		return cmp.Compare(a.line, b.line)
	})
	var out []span
	var stack []span
	var cur u128 // first address not yet emitted
	done := false
	emit := func(last u128, line uint32) {
		if done || cur.cmp(last) > 0 {
			return
		}
		out = append(out, span{cur, last, line})
		if last == (u128{^uint64(0), ^uint64(0)}) {
			done = true
		}
		cur = last.inc()
	}
	for _, s := range in {
		for len(stack) > 0 && stack[len(stack)-1].last.cmp(s.first) < 0 {
			top := stack[len(stack)-1]
			emit(top.last, top.line)
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.first == s.first && top.last == s.last {
				continue // the same network again: the first line keeps it
			}
			if cur.cmp(s.first) < 0 {
				emit(s.first.dec(), top.line)
			}
		}
		cur = s.first
		stack = append(stack, s)
	}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		emit(top.last, top.line)
		stack = stack[:len(stack)-1]
	}
	return out
}

// compile builds the image of a parsed list.
func compile(def *Def, entries []entry, src source, compiled time.Time) []byte {
	v4 := make([]span, 0, len(entries))
	var v6 []span
	type kv struct {
		key  string
		line uint32
	}
	var keys []kv
	for _, e := range entries {
		switch {
		case e.prefix.IsValid() && e.prefix.Addr().Is4():
			s := prefixSpan(e.prefix)
			s.line = uint32(e.line)
			v4 = append(v4, s)
		case e.prefix.IsValid():
			s := prefixSpan(e.prefix)
			s.line = uint32(e.line)
			v6 = append(v6, s)
		default:
			keys = append(keys, kv{e.key, uint32(e.line)})
		}
	}
	v4, v6 = flatten(v4), flatten(v6)
	slices.SortStableFunc(keys, func(a, b kv) int { return cmp.Compare(a.key, b.key) })
	keys = slices.CompactFunc(keys, func(a, b kv) bool { return a.key == b.key }) // first line stays

	le := binary.LittleEndian
	d := formatDef(def)
	blobLen := 0
	for _, k := range keys {
		blobLen += len(k.key)
	}
	b := make([]byte, 0, headerLen+4+len(d)+8+len(v4)*12+len(v6)*36+8+len(keys)*8+blobLen)
	b = append(b, magic...)
	for _, v := range []uint64{src.size, src.mtime, src.ctime, src.ino, src.dev, uint64(compiled.UnixNano())} {
		b = le.AppendUint64(b, v)
	}
	b = le.AppendUint32(b, uint32(len(d)))
	b = append(b, d...)
	b = le.AppendUint32(b, uint32(len(v4)))
	for _, s := range v4 {
		b = le.AppendUint32(b, uint32(s.first.lo))
		b = le.AppendUint32(b, uint32(s.last.lo))
		b = le.AppendUint32(b, s.line)
	}
	b = le.AppendUint32(b, uint32(len(v6)))
	for _, s := range v6 {
		for _, x := range []u128{s.first, s.last} {
			b = binary.BigEndian.AppendUint64(b, x.hi)
			b = binary.BigEndian.AppendUint64(b, x.lo)
		}
		b = le.AppendUint32(b, s.line)
	}
	b = le.AppendUint32(b, uint32(len(keys)))
	off := uint32(0)
	for _, k := range keys {
		b = le.AppendUint32(b, off)
		off += uint32(len(k.key))
	}
	b = le.AppendUint32(b, off)
	for _, k := range keys {
		b = le.AppendUint32(b, k.line)
	}
	for _, k := range keys {
		b = append(b, k.key...)
	}
	return b
}

// List is a compiled list, ready for lookups.
type List struct {
	Def
	src      source
	compiled time.Time // when src began to be read
	v4, v6   []byte
	nkeys    int
	offs     []byte
	lines    []byte
	blob     []byte
	size     int // entries, for diagnostics
	fromDisk bool
	dyn      []string       // a dynamic list's entries, by line
	exact    map[string]int // a dynamic list's sender values, to their line
}

var errCorrupt = errors.New("corrupt list image")

// open reads an image's sections without copying them.
func openImage(img []byte, path string) (*List, error) {
	le := binary.LittleEndian
	if len(img) < headerLen+4 || !bytes.Equal(img[:8], magic) {
		return nil, errCorrupt
	}
	l := &List{}
	h := img[8:headerLen]
	l.src = source{le.Uint64(h), le.Uint64(h[8:]), le.Uint64(h[16:]), le.Uint64(h[24:]), le.Uint64(h[32:])}
	l.compiled = time.Unix(0, int64(le.Uint64(h[40:])))
	p := img[headerLen:]
	take := func(n int) ([]byte, bool) {
		if n < 0 || n > len(p) {
			return nil, false
		}
		out := p[:n]
		p = p[n:]
		return out, true
	}
	count := func() (int, bool) {
		b, ok := take(4)
		if !ok {
			return 0, false
		}
		return int(le.Uint32(b)), true
	}
	n, ok := count()
	if !ok {
		return nil, errCorrupt
	}
	d, ok := take(n)
	if !ok {
		return nil, errCorrupt
	}
	def, _, err := parse(path, bytes.NewReader(d), 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	l.Def = *def
	if n, ok = count(); !ok {
		return nil, errCorrupt
	}
	if l.v4, ok = take(n * 12); !ok {
		return nil, errCorrupt
	}
	if n, ok = count(); !ok {
		return nil, errCorrupt
	}
	if l.v6, ok = take(n * 36); !ok {
		return nil, errCorrupt
	}
	if l.nkeys, ok = count(); !ok {
		return nil, errCorrupt
	}
	if l.offs, ok = take((l.nkeys + 1) * 4); !ok {
		return nil, errCorrupt
	}
	if l.lines, ok = take(l.nkeys * 4); !ok {
		return nil, errCorrupt
	}
	l.blob = p
	if int(le.Uint32(l.offs[l.nkeys*4:])) != len(l.blob) {
		return nil, errCorrupt
	}
	for i := 0; i < l.nkeys; i++ {
		if le.Uint32(l.offs[i*4:]) > le.Uint32(l.offs[i*4+4:]) {
			return nil, errCorrupt
		}
	}
	l.size = len(l.v4)/12 + len(l.v6)/36 + l.nkeys
	return l, nil
}

// lookupAddr returns the line of the entry covering a.
func (l *List) lookupAddr(a netip.Addr) (int, bool) {
	le := binary.LittleEndian
	a = a.Unmap().WithZone("")
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		n := len(l.v4) / 12
		i := sort.Search(n, func(i int) bool { return le.Uint32(l.v4[i*12+4:]) >= x })
		if i < n && le.Uint32(l.v4[i*12:]) <= x {
			return int(le.Uint32(l.v4[i*12+8:])), true
		}
		return 0, false
	}
	if !a.IsValid() {
		return 0, false
	}
	x := addrNum(a)
	at := func(i, off int) u128 {
		r := l.v6[i*36+off:]
		return u128{binary.BigEndian.Uint64(r), binary.BigEndian.Uint64(r[8:])}
	}
	n := len(l.v6) / 36
	i := sort.Search(n, func(i int) bool { return at(i, 16).cmp(x) >= 0 })
	if i < n && at(i, 0).cmp(x) <= 0 {
		return int(le.Uint32(l.v6[i*36+32:])), true
	}
	return 0, false
}

// lookupKey returns the line of the entry with exactly this key.
func (l *List) lookupKey(key string) (int, bool) {
	le := binary.LittleEndian
	keyAt := func(i int) string {
		return string(l.blob[le.Uint32(l.offs[i*4:]):le.Uint32(l.offs[i*4+4:])])
	}
	i := sort.Search(l.nkeys, func(i int) bool { return keyAt(i) >= key })
	if i < l.nkeys && keyAt(i) == key {
		return int(le.Uint32(l.lines[i*4:])), true
	}
	return 0, false
}

// Len is the number of ranges and keys in the compiled list.
func (l *List) Len() int { return l.size }
