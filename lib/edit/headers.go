package edit

import (
	"mf/lib/stream"
	"slices"
	"strings"
)

// maxAlign bounds the fields compared pair by pair (after the common top
// and bottom are set aside), so a header of thousands of fields from a
// stranger costs at most this many steps squared; past it the middle is
// replaced whole, which is as right but takes more edits.
const maxAlign = 2000

// Headers gives the edits that turn the header before into after, in the
// order the MTA must apply them. hidden is the number of fields the MTA
// keeps above the header it showed the milter (Postfix: its own
// Received:), which insert positions count and change indexes do not.
//
// Changes and deletions come first, highest index first within a name, so
// none shifts the index of another, whatever the MTA does with deleted
// fields. Insertions follow, top to bottom, each at its place in after;
// fields that go below everything are appended.
func Headers(before, after []stream.Field, hidden int) []Edit {
	pairs := align(before, after)
	edits := diff(before, after, pairs, hidden, true)
	if !Equal(Apply(before, edits, hidden)[hidden:], after) {
		// Pairing changed fields across others moved one; replacing them
		// is never wrong.
		edits = diff(before, after, pairs, hidden, false)
	}
	return edits
}

// align matches fields of before and after that stay, as index pairs in
// increasing order: a longest common subsequence.
func align(a, b []stream.Field) [][2]int {
	var pairs [][2]int
	top := 0
	for top < len(a) && top < len(b) && same(a[top], b[top]) {
		pairs = append(pairs, [2]int{top, top})
		top++
	}
	bot := 0
	for bot < len(a)-top && bot < len(b)-top && same(a[len(a)-1-bot], b[len(b)-1-bot]) {
		bot++
	}
	ma, mb := a[top:len(a)-bot], b[top:len(b)-bot]
	if len(ma) > 0 && len(mb) > 0 && len(ma) <= maxAlign && len(mb) <= maxAlign {
		// lcs[i][j] is the length of the LCS of ma[i:] and mb[j:].
		lcs := make([][]int32, len(ma)+1)
		for i := range lcs {
			lcs[i] = make([]int32, len(mb)+1)
		}
		for i := len(ma) - 1; i >= 0; i-- {
			for j := len(mb) - 1; j >= 0; j-- {
				if same(ma[i], mb[j]) {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		for i, j := 0, 0; i < len(ma) && j < len(mb); {
			switch {
			case same(ma[i], mb[j]):
				pairs = append(pairs, [2]int{top + i, top + j})
				i++
				j++
			case lcs[i+1][j] >= lcs[i][j+1]:
				i++
			default:
				j++
			}
		}
	}
	for k := bot; k > 0; k-- {
		pairs = append(pairs, [2]int{len(a) - k, len(b) - k})
	}
	return pairs
}

func diff(before, after []stream.Field, pairs [][2]int, hidden int, change bool) []Edit {
	keptB := make([]bool, len(before))
	keptA := make([]bool, len(after))
	for _, p := range pairs {
		keptB[p[0]], keptA[p[1]] = true, true
	}
	// Fields of before that go, and fields of after that come, in each
	// gap between two kept fields. Within a gap a field that goes and one
	// that comes with the same name are a change.
	changedTo := map[int]int{} // before index -> after index
	if change {
		i, j := 0, 0
		for _, p := range append(pairs, [2]int{len(before), len(after)}) {
			var gone []int
			for ; i < p[0]; i++ {
				gone = append(gone, i)
			}
			for ; j < p[1]; j++ {
				for k, g := range gone {
					if g >= 0 && strings.EqualFold(before[g].Name, after[j].Name) {
						changedTo[g] = j
						keptA[j] = true
						gone[k] = -1
						break
					}
				}
			}
			i, j = p[0]+1, p[1]+1
		}
	}
	// Per-name indexes in before, counted from 1.
	index := make([]int, len(before))
	seen := map[string]int{}
	for i, f := range before {
		k := strings.ToLower(f.Name)
		seen[k]++
		index[i] = seen[k]
	}
	var edits []Edit
	for i := len(before) - 1; i >= 0; i-- {
		if keptB[i] {
			continue
		}
		if j, ok := changedTo[i]; ok {
			edits = append(edits, Edit{Kind: ChangeHeader, Index: index[i], Name: before[i].Name, Value: after[j].Value})
		} else {
			edits = append(edits, Edit{Kind: DeleteHeader, Index: index[i], Name: before[i].Name})
		}
	}
	// Everything below the last field that stays is appended.
	last := -1
	for j := range after {
		if keptA[j] {
			last = j
		}
	}
	for j, f := range after {
		if keptA[j] {
			continue
		}
		if j > last {
			edits = append(edits, Edit{Kind: AddHeader, Name: f.Name, Value: f.Value})
		} else {
			edits = append(edits, Edit{Kind: InsertHeader, Index: j + hidden, Name: f.Name, Value: f.Value})
		}
	}
	return edits
}

// Apply makes edits to a header the way an MTA does, hidden fields (shown
// as "X-Hidden") on top. It is the model Headers is checked against.
func Apply(before []stream.Field, edits []Edit, hidden int) []stream.Field {
	type field struct {
		stream.Field
		orig int // per-name index in before, 0 for new fields
	}
	var h []field
	for range hidden {
		h = append(h, field{Field: stream.Field{Name: "X-Hidden", Value: ""}})
	}
	seen := map[string]int{}
	for _, f := range before {
		k := strings.ToLower(f.Name)
		seen[k]++
		h = append(h, field{f, seen[k]})
	}
	for _, e := range edits {
		switch e.Kind {
		case AddHeader:
			h = append(h, field{Field: stream.Field{Name: e.Name, Value: e.Value}})
		case InsertHeader:
			i := min(max(e.Index, 0), len(h))
			h = slices.Insert(h, i, field{Field: stream.Field{Name: e.Name, Value: e.Value}})
		case ChangeHeader, DeleteHeader:
			for i := range h {
				if h[i].orig == e.Index && strings.EqualFold(h[i].Name, e.Name) {
					if e.Kind == DeleteHeader {
						h = slices.Delete(h, i, i+1)
					} else {
						h[i].Value = e.Value
					}
					break
				}
			}
		}
	}
	out := make([]stream.Field, len(h))
	for i, f := range h {
		out[i] = f.Field
	}
	return out
}

// Equal reports whether two headers are the same to an MTA: names match
// whatever their case, since no edit can change only that.
func Equal(a, b []stream.Field) bool {
	return slices.EqualFunc(a, b, same)
}
