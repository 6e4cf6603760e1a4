package summary

import (
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"strings"
)

// other is the key that stands for every key past a table's bound.
const other = "(other)"

type row struct {
	n, bytes, defers int64
	temp             int64   // refusals: tempfails beside the rejects in n
	sum, max         float64 // delays, seconds
	delays           int64   // deliveries with a known delay
}

func (r *row) count(bytes int64) { r.n++; r.bytes += bytes }

func (r *row) refused(rejected bool) {
	if rejected {
		r.n++
	} else {
		r.temp++
	}
}

func (r *row) delay(d float64) {
	r.sum += d
	r.delays++
	r.max = math.Max(r.max, d)
}

// table counts per key, up to max keys; later keys share one row, so a
// flood of distinct senders costs a bounded amount of memory.
type table struct {
	max int
	// idx finds the keys: open addressing, at most half full, each slot
	// a key's number+1 below and the top 32 bits of its hash above (0:
	// empty), which also pick the key's first slot. Unlike a map of
	// strings it holds no pointers for the collector to follow, grows
	// and makes a full table's filter without hashing a key again, and
	// the hash the filter is asked with serves the look-up too.
	idx   []uint64
	n     int
	full  bool
	other *row // lookup(other) once the table is full: a new key costs one look-up, not two
	// The keys in the order they came, keys[i]'s row at(i): rows are
	// cut from slabs, a few allocations for many keys and no pointers
	// for the collector to follow, and the report reads them in order
	// instead of scattered over the map.
	keys  []string
	slabs [][]row
	// known holds the keys of a full table, which takes no more: most
	// keys it does not hold are told so without a look-up in the map,
	// megabytes wide, where they would miss.
	known *filter
}

// filter is a Bloom filter of two probes: what it says it does not
// hold, it does not hold.
type filter struct {
	bits []uint64
	mask uint64
}

var filterSeed = maphash.MakeSeed()

// newFilter holds the n keys of idx in about 8 bits each: one key in
// 50 it does not hold looks held. Its two probes are made of the top of
// a key's hash, which idx keeps: no key is hashed again.
func newFilter(idx []uint64, n int) *filter {
	size := uint64(64)
	for size < 8*uint64(n) {
		size *= 2
	}
	f := &filter{bits: make([]uint64, size/64), mask: size - 1}
	for _, v := range idx {
		if v != 0 {
			a, b := f.probes(v)
			f.bits[a/64] |= 1 << (a & 63)
			f.bits[b/64] |= 1 << (b & 63)
		}
	}
	return f
}

// probes are the two bits of hash h (its top 32 bits count).
func (f *filter) probes(h uint64) (uint64, uint64) {
	t := h >> 32
	return t & f.mask, (t>>16 | t<<16) & (1<<32 - 1) & f.mask
}

func (f *filter) has(h uint64) bool {
	a, b := f.probes(h)
	return f.bits[a/64]&(1<<(a&63)) != 0 && f.bits[b/64]&(1<<(b&63)) != 0
}

const slabRows = 64

// newRow is the row of a new key k.
func (t *table) newRow(k string) *row {
	i := len(t.keys)
	if i%slabRows == 0 {
		t.slabs = append(t.slabs, make([]row, slabRows))
	}
	t.keys = append(t.keys, k)
	return t.at(i)
}

func (t *table) at(i int) *row { return &t.slabs[i/slabRows][i%slabRows] }

const growAt = 1024

func newTable(max int) *table { return &table{max: max} }

// find looks for k, of hash h: its row, or nil and the empty slot where
// it goes.
func (t *table) find(k string, h uint64) (*row, int) {
	if len(t.idx) == 0 {
		return nil, -1
	}
	mask := len(t.idx) - 1
	tag := h &^ (1<<32 - 1)
	for i := int(h>>32) & mask; ; i = (i + 1) & mask {
		v := t.idx[i]
		if v == 0 {
			return nil, i
		}
		if v&^(1<<32-1) == tag && t.keys[v&(1<<32-1)-1] == k {
			return t.at(int(v&(1<<32-1)) - 1), i
		}
	}
}

// lookup is the row of k, nil when the table does not hold it.
func (t *table) lookup(k string) *row {
	r, _ := t.find(k, maphash.String(filterSeed, k))
	return r
}

func (t *table) add(k string) *row {
	h := maphash.String(filterSeed, k)
	if t.known != nil && !t.known.has(h) {
		return t.other
	}
	r, i := t.find(k, h)
	if r != nil {
		return r
	}
	return t.insert(strings.Clone(k), h, i) // not a piece of a longer string kept alive
}

// addKey is add(string(k)), without making a string of a key already in
// the table.
func (t *table) addKey(k []byte) *row {
	h := maphash.Bytes(filterSeed, k)
	if t.known != nil && !t.known.has(h) {
		return t.other
	}
	r, i := t.find(string(k), h)
	if r != nil {
		return r
	}
	return t.insert(string(k), h, i)
}

// addBytes is add(trim(k)), without making a string of a key already
// in the table.
func (t *table) addBytes(k []byte) *row { return t.addKey(trimBytes(k)) }

// insert adds k, a key not in the table and a string of its own, of
// hash h, at slot i of idx (from find; -1: none), or gives the row of
// the keys past the bound.
func (t *table) insert(k string, h uint64, i int) *row {
	if t.n >= t.max {
		t.full = true
		if t.other == nil {
			oh := maphash.String(filterSeed, other)
			var j int
			if t.other, j = t.find(other, oh); t.other == nil {
				t.other = t.put(other, oh, j)
			}
			t.known = newFilter(t.idx, t.n)
		}
		return t.other
	}
	if t.n == growAt && t.max > 2*growAt {
		// Past a thousand keys a table is likely to fill: make its
		// room at once instead of growing it step by step.
		t.keys = slices.Grow(t.keys, t.max+1-len(t.keys))
	}
	return t.put(k, h, i)
}

// put adds k, of hash h, a key not in the table, at slot i of idx.
func (t *table) put(k string, h uint64, i int) *row {
	if i < 0 || 2*(t.n+1) > len(t.idx) {
		t.grow(max(64, 2*len(t.idx)))
		_, i = t.find(k, h)
	}
	r := t.newRow(k)
	t.n++
	t.idx[i] = h&^(1<<32-1) | uint64(len(t.keys))
	return r
}

// grow makes idx size slots (a power of 2) long. A key's first slot
// is the top of its hash, which idx keeps: no key is hashed again.
func (t *table) grow(size int) {
	idx := make([]uint64, size)
	mask := len(idx) - 1
	for _, v := range t.idx {
		if v == 0 {
			continue
		}
		i := int(v>>32) & mask
		for idx[i] != 0 {
			i = (i + 1) & mask
		}
		idx[i] = v
	}
	t.idx = idx
}

// distinct is the number of keys with a count, exact unless the table
// filled up.
func (t *table) distinct() int {
	n := 0
	for i, k := range t.keys {
		if k != other && t.at(i).n > 0 {
			n++
		}
	}
	return n
}

type keyed struct {
	k string
	*row
}

// top returns the rows in descending order of by, then by key, the first
// n of them (all for n <= 0).
func (t *table) top(n int, by func(*row) float64) []keyed {
	// before is a strict order (keys are distinct), so the first n are
	// the same whether the rows are all sorted or only the best kept.
	before := func(a, b *keyed, av, bv float64) bool {
		if av != bv {
			return av > bv
		}
		return a.k < b.k
	}
	if n <= 0 || n >= len(t.keys) {
		out := make([]keyed, 0, len(t.keys))
		for i, k := range t.keys {
			out = append(out, keyed{k, t.at(i)})
		}
		sort.Slice(out, func(i, j int) bool {
			return before(&out[i], &out[j], by(out[i].row), by(out[j].row))
		})
		return out
	}
	// A table holds up to --max-keys rows and shows ten: sorting them all
	// took most of the report's time. Keep the best n, in order, by
	// insertion; most rows lose to the nth at once.
	out := make([]keyed, 0, n+1)
	vals := make([]float64, 0, n+1)
	for i, k := range t.keys {
		r := t.at(i)
		c, v := keyed{k, r}, by(r)
		if len(out) == n && !before(&c, &out[n-1], v, vals[n-1]) {
			continue
		}
		j := sort.Search(len(out), func(j int) bool { return before(&c, &out[j], v, vals[j]) })
		out = slices.Insert(out, j, c)
		vals = slices.Insert(vals, j, v)
		if len(out) > n {
			out, vals = out[:n], vals[:n]
		}
	}
	return out
}

// hist is a histogram of delays in buckets 2% wide, enough for
// percentiles whatever the number of deliveries.
type hist struct {
	// b counts per bucket, by its number: a few hundred buckets span
	// up to years, and a slice takes no hashing per delivery.
	b   []int64
	n   int64
	max float64
}

const histBase = 1.02

var logHistBase = math.Log(histBase)

func (h *hist) add(d float64) {
	k := int(math.Log(d+1) / logHistBase)
	if k >= len(h.b) {
		h.b = append(h.b, make([]int64, k+1-len(h.b))...)
	}
	h.b[k]++
	h.n++
	h.max = math.Max(h.max, d)
}

// quantile returns the upper edge of the bucket holding quantile q.
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(h.n)))
	var acc int64
	for k, n := range h.b {
		if n == 0 {
			continue
		}
		acc += n
		if acc >= want {
			return math.Min(math.Pow(histBase, float64(k+1))-1, h.max)
		}
	}
	return h.max
}
