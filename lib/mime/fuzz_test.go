package mime

import (
	"bytes"
	"testing"
)

// FuzzWalk: any bytes give a result (with problems), never a panic, and
// the limits hold.
func FuzzWalk(f *testing.F) {
	f.Add([]byte("Subject: x\n\nbody\n"))
	f.Add([]byte(withAttachment("a.zip", "application/zip", []byte("PK\x03\x04junk"))))
	l := DefaultLimits
	l.MaxParts, l.MaxPart, l.ZipBytes = 50, 1<<20, 1<<20
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Walk(bytes.NewReader(b), l)
		if err != nil {
			t.Fatalf("error on an in-memory message: %v", err)
		}
		if len(r.Parts) > l.MaxParts {
			t.Fatalf("%d parts", len(r.Parts))
		}
		for _, p := range r.Parts {
			if int64(len(p.Text)) > l.MaxText {
				t.Fatalf("text of %d bytes", len(p.Text))
			}
		}
	})
}
