package edit

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"mf/lib/stream"
	"slices"
	"strings"
	"testing"
)

func fields(s ...string) []stream.Field {
	var out []stream.Field
	for _, f := range s {
		n, v, _ := strings.Cut(f, ": ")
		out = append(out, stream.Field{Name: n, Value: v})
	}
	return out
}

func TestHeaders(t *testing.T) {
	base := fields("Received: a", "Received: b", "From: x@example.org", "Subject: hi", "X-Old: 1")
	cases := []struct {
		name   string
		after  []stream.Field
		hidden int
		want   []string
	}{
		{"nothing", base, 1, nil},
		{"prepend", append(fields("X-Mf-List: tag"), base...), 1, []string{"insert header at 1 X-Mf-List: tag"}},
		{"prepend, no hidden field", append(fields("X-Mf-List: tag"), base...), 0, []string{"insert header at 0 X-Mf-List: tag"}},
		{"append", append(slices.Clone(base), fields("X-Spam: no")...), 1, []string{"add header X-Spam: no"}},
		{"change", fields("Received: a", "Received: b", "From: x@example.org", "Subject: [SPAM] hi", "X-Old: 1"), 1, []string{"change header Subject[1]: [SPAM] hi"}},
		{"delete second of a name", fields("Received: a", "From: x@example.org", "Subject: hi", "X-Old: 1"), 1, []string{"delete header Received[2]"}},
		{"delete both, highest first", fields("From: x@example.org", "Subject: hi", "X-Old: 1"), 0, []string{"delete header Received[2]", "delete header Received[1]"}},
		{"insert in the middle", fields("Received: a", "Received: b", "X-New: 1", "From: x@example.org", "Subject: hi", "X-Old: 1"), 1, []string{"insert header at 3 X-New: 1"}},
		{"folded value", fields("Received: a", "Received: b", "From: x@example.org", "Subject: hi\n\tthere", "X-Old: 1"), 0, []string{"change header Subject[1]: hi\n\tthere"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			edits := Headers(base, c.after, c.hidden)
			var got []string
			for _, e := range edits {
				got = append(got, e.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("edits:\n got %q\nwant %q", got, c.want)
			}
			if res := Apply(base, edits, c.hidden)[c.hidden:]; !slices.Equal(res, c.after) {
				t.Errorf("applied: %v, want %v", res, c.after)
			}
		})
	}
}

// TestHeadersRandom makes random changes to real headers and checks
// that the edits, applied as an MTA applies them, give the changed
// header.
func TestHeadersRandom(t *testing.T) {
	names := []string{"Received", "Subject", "X-A", "X-B", "From"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var before []stream.Field
		for range r.IntN(8) {
			before = append(before, stream.Field{Name: names[r.IntN(len(names))], Value: fmt.Sprint(r.IntN(3))})
		}
		after := slices.Clone(before)
		for range r.IntN(5) {
			f := stream.Field{Name: names[r.IntN(len(names))], Value: fmt.Sprint(r.IntN(4))}
			switch op := r.IntN(3); {
			case op == 0 || len(after) == 0:
				after = slices.Insert(after, r.IntN(len(after)+1), f)
			case op == 1:
				k := r.IntN(len(after))
				after = slices.Delete(after, k, k+1)
			default:
				after[r.IntN(len(after))].Value = f.Value
			}
		}
		hidden := r.IntN(2)
		edits := Headers(before, after, hidden)
		if got := Apply(before, edits, hidden)[hidden:]; !slices.Equal(got, after) {
			t.Fatalf("case %d: before %v after %v hidden %d: edits %v give %v", i, before, after, hidden, edits, got)
		}
	}
}

func TestHeadersLarge(t *testing.T) {
	// More fields than are aligned pair by pair: still right.
	var before, after []stream.Field
	for i := range 3 * maxAlign {
		before = append(before, stream.Field{Name: "Received", Value: fmt.Sprint(i)})
		if i%2 == 0 {
			after = append(after, stream.Field{Name: "Received", Value: fmt.Sprint(i)})
		} else {
			after = append(after, stream.Field{Name: "Received", Value: fmt.Sprint(-i)})
		}
	}
	edits := Headers(before, after, 1)
	if got := Apply(before, edits, 1)[1:]; !slices.Equal(got, after) {
		t.Fatal("large header: edits do not give the changed header")
	}
}

func TestReadFields(t *testing.T) {
	got, err := stream.ReadFields(bufio.NewReader(strings.NewReader("Subject: hi\r\n\tthere\r\nX-Empty:\r\nFrom:x@y\r\n\r\nbody")))
	if err != nil {
		t.Fatal(err)
	}
	want := fields("Subject: hi\n\tthere", "X-Empty: ", "From: x@y")
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := stream.ReadFields(bufio.NewReader(strings.NewReader("no colon here\n\n"))); err == nil {
		t.Error("a line without a colon is read")
	}
}

func TestEnvelope(t *testing.T) {
	got := Envelope("a@x", "b@x", []string{"r1@x", "R2@x", "r3@x"}, []string{"r1@x", "r2@x", "r4@x", "r4@x"})
	var s []string
	for _, e := range got {
		s = append(s, e.String())
	}
	want := []string{"change sender <b@x>", "add recipient <r4@x>", "delete recipient <r3@x>"}
	if !slices.Equal(s, want) {
		t.Errorf("got %q, want %q", s, want)
	}
	if e := Envelope("a@x", "a@x", []string{"r@x"}, []string{"r@x"}); len(e) != 0 {
		t.Errorf("no change gives %v", e)
	}
}

// FuzzHeaders reads two header blocks a stranger and a stage could
// write, and checks the edits between them give the second.
func FuzzHeaders(f *testing.F) {
	f.Add("Subject: a\nX: 1\n\n", "X-Mf: t\nSubject: b\n\n", 1)
	f.Add("Received: a\nReceived: b\n\n", "Received: b\n\n", 0)
	f.Add("A: 1\nB: 2\nC: 3\n\n", "C: 3\nB: 2\nA: 1\n\n", 1)
	f.Add("Subject: x\r\n\tfolded\r\n\r\n", "Subject: x\n\tfolded\nNew: y\n\n", 0)
	f.Fuzz(func(t *testing.T, a, b string, hidden int) {
		hidden = min(max(hidden, 0), 2)
		before, err := stream.ReadFields(bufio.NewReader(strings.NewReader(a)))
		if err != nil {
			return
		}
		after, err := stream.ReadFields(bufio.NewReader(strings.NewReader(b)))
		if err != nil {
			return
		}
		edits := Headers(before, after, hidden)
		if got := Apply(before, edits, hidden)[hidden:]; !Equal(got, after) {
			t.Fatalf("edits %v give %v, want %v", edits, got, after)
		}
	})
}
