package main

import "testing"

// TestThreads: a server runs Go code on one thread where the runtime
// would run two, and on what GOMAXPROCS or the runtime says otherwise.
func TestThreads(t *testing.T) {
	for _, c := range []struct {
		env       string
		def, want int
	}{
		{"", 2, 1},
		{"", 1, 1},
		{"", 4, 4},
		{"2", 2, 2},
		{"", 3, 3},
	} {
		lookup := func(k string) (string, bool) {
			if k == "GOMAXPROCS" && c.env != "" {
				return c.env, true
			}
			return "", false
		}
		if got := threads(lookup, c.def); got != c.want {
			t.Errorf("GOMAXPROCS=%q, runtime's default %d: %d threads, want %d", c.env, c.def, got, c.want)
		}
	}
}
