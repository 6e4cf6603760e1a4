package lists

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeBigList writes a client-addr list of n entries: a third /24
// networks, the rest single IPv4 addresses, one in a thousand IPv6 /48s.
func writeBigList(tb testing.TB, dir string, n int) (string, []netip.Addr) {
	tb.Helper()
	path := filepath.Join(dir, "big.list")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "match: client-addr\naction: block\n")
	r := rand.New(rand.NewPCG(1, 2))
	probes := make([]netip.Addr, 0, 1024)
	for i := 0; i < n; i++ {
		var a netip.Addr
		switch {
		case i%1000 == 999:
			var b [16]byte
			b[0], b[1] = 0x20, 0x01
			for j := 2; j < 6; j++ {
				b[j] = byte(r.Uint32())
			}
			a = netip.AddrFrom16(b)
			fmt.Fprintf(w, "%s/48\n", a)
		case i%3 == 0:
			a = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), 0})
			fmt.Fprintf(w, "%s/24\n", a)
		default:
			a = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
			fmt.Fprintf(w, "%s\n", a)
		}
		if len(probes) < cap(probes) {
			probes = append(probes, a)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return path, probes
}

// BenchmarkMillion measures, for a list of 10^6 entries, what one stage
// process pays per message: open the cached image and look an address up.
// The baseline, run beside it, is a Go map holding the same addresses,
// already built: the cheapest lookup there is, with no load at all.
// Reported: ns per cached open+lookup, ns per lookup, the map's ns per
// lookup, their ratio, and the one-off compile time.
func BenchmarkMillion(b *testing.B) {
	dir := b.TempDir()
	path, probes := writeBigList(b, dir, 1_000_000)
	settle(b, path) // or the image compiled now is compiled again
	o := Options{CacheDir: filepath.Join(dir, "cache"), LockTimeout: time.Second}

	start := time.Now()
	if _, err := Open(path, o); err != nil {
		b.Fatal(err)
	}
	compile := time.Since(start)

	base := make(map[netip.Addr]int, len(probes))
	for i, a := range probes {
		base[a] = i
	}

	var open, look, mapLook time.Duration
	var hits int
	const lookups = 1 << 16
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		l, err := Open(path, o)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := l.lookupAddr(probes[i%len(probes)]); ok {
			hits++
		}
		open += time.Since(t0)

		t0 = time.Now()
		for j := 0; j < lookups; j++ {
			if _, ok := l.lookupAddr(probes[j%len(probes)]); ok {
				hits++
			}
		}
		look += time.Since(t0)

		t0 = time.Now()
		for j := 0; j < lookups; j++ {
			if _, ok := base[probes[j%len(probes)]]; ok {
				hits++
			}
		}
		mapLook += time.Since(t0)
	}
	if hits != b.N*(1+2*lookups) {
		b.Fatalf("%d hits, want %d: a listed address was not found", hits, b.N*(1+2*lookups))
	}
	n := float64(b.N)
	b.ReportMetric(float64(open.Nanoseconds())/n, "ns/open+lookup")
	b.ReportMetric(float64(look.Nanoseconds())/n/lookups, "ns/lookup")
	b.ReportMetric(float64(mapLook.Nanoseconds())/n/lookups, "ns/map-lookup")
	b.ReportMetric(float64(look)/float64(mapLook), "x-map")
	b.ReportMetric(float64(compile.Milliseconds()), "ms/compile")
}
