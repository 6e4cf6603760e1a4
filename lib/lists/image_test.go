package lists

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func addrDef(t testing.TB) *Def {
	t.Helper()
	def, _, err := parse("t.list", strings.NewReader("match: client-addr\naction: block\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// reference is the line of the entry that should win for a: the most
// specific network holding it, and of equal networks the first line.
func reference(entries []entry, a netip.Addr) (int, bool) {
	best, bits := 0, -1
	for _, e := range entries {
		if !e.prefix.Contains(a) {
			continue
		}
		if e.prefix.Bits() > bits || e.prefix.Bits() == bits && e.line < best {
			best, bits = e.line, e.prefix.Bits()
		}
	}
	return best, bits >= 0
}

// windows are the address ranges the random networks are drawn in: the
// bottom and top of each family, where ranges start and end at the edges
// of the space, and one in the middle.
var windows = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/22"),
	netip.MustParsePrefix("10.20.28.0/22"),
	netip.MustParsePrefix("255.255.252.0/22"),
	netip.MustParsePrefix("::/118"),
	netip.MustParsePrefix("2001:db8::/118"),
	netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fc00/118"),
}

func randomPrefix(r *rand.Rand, w netip.Prefix) netip.Prefix {
	switch r.IntN(20) {
	case 0:
		return netip.PrefixFrom(w.Addr(), 0).Masked() // the whole family
	case 1:
		return netip.PrefixFrom(w.Addr(), r.IntN(w.Bits()+1)).Masked() // a network around the window
	}
	bits := w.Bits() + r.IntN(w.Addr().BitLen()-w.Bits()+1)
	b := w.Addr().AsSlice()
	for i := w.Bits(); i < len(b)*8; i++ {
		if r.IntN(2) == 1 {
			b[i/8] |= 1 << (7 - i%8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(a, bits).Masked()
}

// TestFlattenAgainstBruteForce compiles random nested networks and checks
// every address of the window against the reference.
func TestFlattenAgainstBruteForce(t *testing.T) {
	def := addrDef(t)
	r := rand.New(rand.NewPCG(7, 11))
	trials := 300
	if testing.Short() {
		trials = 40
	}
	for trial := 0; trial < trials; trial++ {
		w := windows[trial%len(windows)]
		n := 1 + r.IntN(40)
		entries := make([]entry, 0, n)
		for i := 0; i < n; i++ {
			p := randomPrefix(r, w)
			if i > 0 && r.IntN(8) == 0 {
				p = entries[r.IntN(len(entries))].prefix // the same network again
			}
			entries = append(entries, entry{prefix: p, line: i + 3})
		}
		l, err := openImage(compile(def, entries, source{}, time.Time{}), "t.list")
		if err != nil {
			t.Fatal(err)
		}
		checkSpans(t, l)
		for a := w.Addr(); w.Contains(a); a = a.Next() {
			want, wok := reference(entries, a)
			got, ok := l.lookupAddr(a)
			if ok != wok || got != want {
				t.Fatalf("trial %d, %s: got line %d %v, want %d %v; entries:\n%s", trial, a, got, ok, want, wok, dumpEntries(entries))
			}
			if !a.Next().IsValid() {
				break
			}
		}
		// Just outside the window, only the wider networks can match.
		for _, a := range []netip.Addr{w.Addr().Prev(), lastOf(w).Next()} {
			if !a.IsValid() {
				continue
			}
			want, wok := reference(entries, a)
			if got, ok := l.lookupAddr(a); ok != wok || got != want {
				t.Fatalf("trial %d, %s outside the window: got %d %v, want %d %v", trial, a, got, ok, want, wok)
			}
		}
	}
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func dumpEntries(es []entry) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.prefix.String())
		b.WriteString("\n")
	}
	return b.String()
}

// checkSpans: the ranges of an image are sorted and disjoint, each with
// first <= last, so that one binary search finds the one range of an
// address.
func checkSpans(t *testing.T, l *List) {
	t.Helper()
	for _, fam := range []struct {
		data []byte
		size int
		at   func(b []byte) (u128, u128)
	}{
		{l.v4, 12, func(b []byte) (u128, u128) {
			return u128{0, uint64(le32(b))}, u128{0, uint64(le32(b[4:]))}
		}},
		{l.v6, 36, func(b []byte) (u128, u128) {
			return u128{be64(b), be64(b[8:])}, u128{be64(b[16:]), be64(b[24:])}
		}},
	} {
		var prev u128
		for i := 0; i*fam.size < len(fam.data); i++ {
			first, last := fam.at(fam.data[i*fam.size:])
			if first.cmp(last) > 0 {
				t.Fatalf("range %d: first > last", i)
			}
			if i > 0 && first.cmp(prev) <= 0 {
				t.Fatalf("range %d overlaps or is out of order", i)
			}
			prev = last
		}
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func be64(b []byte) uint64 {
	var x uint64
	for i := 0; i < 8; i++ {
		x = x<<8 | uint64(b[i])
	}
	return x
}

func TestFlattenExamples(t *testing.T) {
	sp := func(first, last uint64, line uint32) span { return span{u128{0, first}, u128{0, last}, line} }
	for _, tt := range []struct {
		name    string
		in, out []span
	}{
		{"apart", []span{sp(10, 20, 1), sp(0, 5, 2)}, []span{sp(0, 5, 2), sp(10, 20, 1)}},
		{"nested", []span{sp(0, 255, 1), sp(16, 31, 2)}, []span{sp(0, 15, 1), sp(16, 31, 2), sp(32, 255, 1)}},
		{"nested at start", []span{sp(0, 255, 1), sp(0, 15, 2)}, []span{sp(0, 15, 2), sp(16, 255, 1)}},
		{"nested at end", []span{sp(0, 255, 1), sp(240, 255, 2)}, []span{sp(0, 239, 1), sp(240, 255, 2)}},
		{"same twice", []span{sp(0, 255, 5), sp(0, 255, 3)}, []span{sp(0, 255, 3)}},
		{"three deep", []span{sp(0, 255, 1), sp(0, 127, 2), sp(64, 127, 3)},
			[]span{sp(0, 63, 2), sp(64, 127, 3), sp(128, 255, 1)}},
		{"single in two", []span{sp(8, 8, 1), sp(0, 15, 2), sp(0, 255, 3)},
			[]span{sp(0, 7, 2), sp(8, 8, 1), sp(9, 15, 2), sp(16, 255, 3)}},
		{"empty", nil, nil},
	} {
		got := flatten(tt.in)
		if len(got) != len(tt.out) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.out)
			continue
		}
		for i := range got {
			if got[i] != tt.out[i] {
				t.Errorf("%s: %v, want %v", tt.name, got, tt.out)
				break
			}
		}
	}
	// The top of the IPv6 space: the last range ends at the last address
	// without the next one wrapping round to ::.
	top := u128{^uint64(0), ^uint64(0)}
	got := flatten([]span{{u128{}, top, 1}, {u128{^uint64(0), ^uint64(0) - 255}, top, 2}})
	if len(got) != 2 || got[1].last != top || got[1].line != 2 || got[0].last != (u128{^uint64(0), ^uint64(0) - 256}) {
		t.Errorf("top of space: %v", got)
	}
}

func TestKeysSortedAndDeduplicated(t *testing.T) {
	l := compileList(t, "match: sender\naction: block\nb@example.org\na@example.org\nB@EXAMPLE.ORG\n@example.org\npostmaster@\n")
	if l.Len() != 4 {
		t.Errorf("Len %d, want 4 (one duplicate)", l.Len())
	}
	if h, _ := l.Match(&Query{Sender: "b@example.org"}); h.Line != 3 {
		t.Errorf("duplicate key: line %d, want the first, 3", h.Line)
	}
	var prev string
	for i := 0; i < l.nkeys; i++ {
		k := string(l.blob[le32(l.offs[i*4:]):le32(l.offs[i*4+4:])])
		if i > 0 && k <= prev {
			t.Errorf("keys out of order: %q after %q", k, prev)
		}
		prev = k
	}
}

func TestImageRoundTrip(t *testing.T) {
	text := "match: client-addr client-name sender\naction: block\nreply: 554 5.7.1 No\n192.0.2.0/24\n2001:db8::/32\n.example.net\n@example.org\n"
	def, entries, err := parse("x.list", strings.NewReader(text), 0)
	if err != nil {
		t.Fatal(err)
	}
	src := source{1, 2, 3, 4, 5}
	img := compile(def, entries, src, time.Unix(0, 6))
	l, err := openImage(img, "x.list")
	if err != nil {
		t.Fatal(err)
	}
	if l.src != src || !l.compiled.Equal(time.Unix(0, 6)) || l.Reply.Code != 554 || !equalTargets(l.Targets, def.Targets) || l.Len() != 4 {
		t.Errorf("image gave %+v", l)
	}
	// Every strict prefix of the image is refused, and so is a wrong magic.
	for n := 0; n < len(img); n++ {
		if _, err := openImage(img[:n], "x.list"); err == nil {
			t.Fatalf("image cut to %d of %d bytes accepted", n, len(img))
		}
	}
	bad := bytes.Clone(img)
	bad[7]++
	if _, err := openImage(bad, "x.list"); err == nil {
		t.Error("image of another version accepted")
	}
	if _, err := openImage(append(bytes.Clone(img), 'x'), "x.list"); err == nil {
		t.Error("image with a byte too many accepted")
	}
}
