package state

import (
	"testing"
)

// FuzzDecode: a shard file of any bytes is read or refused, never a
// panic, and whatever is read survives being written back.
func FuzzDecode(f *testing.F) {
	m := map[string]rec{"q:r a@example.org 60 1": {[]byte("12"), 1e12}, "dl|block|192.0.2.1": {[]byte(`{"reason":"x"}`), 0}}
	b := header()
	for k, r := range m {
		b = appendRecord(b, k, r)
	}
	f.Add(b)
	f.Add(b[:len(b)-3])
	mid := append([]byte(nil), b...)
	mid[headerLen+5] ^= 0xff // damage in the first record, the second after it
	f.Add(mid)
	f.Add(fileMagic[:3])
	f.Fuzz(func(t *testing.T, data []byte) {
		sh, err := decode(data)
		if err != nil {
			return
		}
		if sh.good > int64(len(data)) {
			t.Fatalf("good %d past the end %d", sh.good, len(data))
		}
		last := int64(headerLen)
		for _, d := range sh.damage {
			if d.off < last || d.n <= 0 || d.off+d.n > sh.good {
				t.Fatalf("damage %+v out of place (after %d, good %d)", d, last, sh.good)
			}
			last = d.off + d.n
		}
		b := header()
		for k, r := range sh.m {
			b = appendRecord(b, k, r)
		}
		again, err := decode(b)
		if err != nil || len(again.m) != len(sh.m) || again.good != int64(len(b)) {
			t.Fatalf("round trip: %d entries, %v; had %d", len(again.m), err, len(sh.m))
		}
	})
}

func header() []byte { return append(append([]byte(nil), fileMagic...), make([]byte, 8)...) }
