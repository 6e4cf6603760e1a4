package lists

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"mf/lib/state"
	"mf/lib/verdict"
)

// Dynamic lists are block lists kept in the state store instead of a
// file: "mf-lists add", and stages that catch an abuser, add entries
// with an expiry. An entry is the key "dl|LIST|ENTRY", so all of them
// are one key family that a check reads at once.

// DynamicTargets are what a dynamic entry can match: the client by
// address or network, the client by verified name, the sender.
var DynamicTargets = []Target{ClientAddr, ClientName, Sender}

// Compiled when first used, so a command that never needs it does not
// pay for it at every start.
var listNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`) })

// DynEntry is one entry of a dynamic list.
type DynEntry struct {
	List    string    `json:"-"`
	Entry   string    `json:"-"`
	Reason  string    `json:"reason,omitempty"`
	By      string    `json:"by,omitempty"`
	Added   time.Time `json:"added"`
	Expires time.Time `json:"-"` // zero: never
}

func dynKey(list, entry string) string { return "dl|" + list + "|" + entry }

// CheckDynamic validates a dynamic list name and entry and returns the
// entry as stored (IP addresses unmapped, names in lower case).
func CheckDynamic(list, entry string) (string, error) {
	if !listNameRE().MatchString(list) {
		return "", fmt.Errorf("list name %q: use letters, digits, '.', '_' and '-'", list)
	}
	e, err := parseEntry(entry)
	if err != nil {
		return "", err
	}
	d := Def{Targets: DynamicTargets}
	if !d.fits(e) {
		return "", fmt.Errorf("%q: a dynamic list matches client addresses, client names and senders, and this is %s", entry, kindWhat(e))
	}
	if e.prefix.IsValid() {
		if e.prefix.IsSingleIP() {
			return e.prefix.Addr().String(), nil
		}
		return e.prefix.String(), nil
	}
	return strings.ToLower(entry), nil
}

// AddDynamic adds (or renews) entry on dynamic list list for ttl (0:
// until deleted), saying why and by whom.
func AddDynamic(ctx context.Context, st state.Store, list, entry string, ttl time.Duration, reason, by string) (DynEntry, error) {
	e, err := CheckDynamic(list, entry)
	if err != nil {
		return DynEntry{}, err
	}
	d := DynEntry{List: list, Entry: e, Reason: reason, By: by, Added: time.Now().Truncate(time.Second)}
	v, _ := json.Marshal(d)
	if err := st.Set(ctx, dynKey(list, e), v, ttl); err != nil {
		return DynEntry{}, err
	}
	if ttl > 0 {
		d.Expires = d.Added.Add(ttl)
	}
	return d, nil
}

// DelDynamic removes entry from list and reports whether it was there.
func DelDynamic(ctx context.Context, st state.Store, list, entry string) (bool, error) {
	e, err := CheckDynamic(list, entry)
	if err != nil {
		return false, err
	}
	return st.Delete(ctx, dynKey(list, e))
}

// Dynamic returns the live entries of list, or of every dynamic list
// when list is "", by list and entry.
func Dynamic(ctx context.Context, st state.Store, list string) ([]DynEntry, error) {
	pfx := "dl|"
	if list != "" {
		pfx = dynKey(list, "")
	}
	es, err := st.Scan(ctx, pfx)
	if err != nil {
		return nil, err
	}
	out := make([]DynEntry, 0, len(es))
	for _, e := range es {
		list, entry, ok := strings.Cut(strings.TrimPrefix(e.Key, "dl|"), "|")
		if !ok {
			continue
		}
		d := DynEntry{}
		_ = json.Unmarshal(e.Value, &d) // an entry without its note still blocks
		d.List, d.Entry, d.Expires = list, entry, e.Expires
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].List < out[j].List })
	return out, nil
}

// LoadDynamic compiles every dynamic list into a List that blocks with
// reply (a 4xx reply tempfails), ready to be tried after the static ones.
// Entries that no longer parse are skipped, not fatal: the store is
// shared with other versions and hosts.
func LoadDynamic(ctx context.Context, st state.Store, reply verdict.Reply) ([]*List, error) {
	all, err := Dynamic(ctx, st, "")
	if err != nil {
		return nil, err
	}
	var out []*List
	for i := 0; i < len(all); {
		j := i
		def := &Def{Name: all[i].List, Path: "dynamic:" + all[i].List, Targets: DynamicTargets, Action: Block, Reply: reply}
		if reply.Code/100 == 4 {
			def.Action = Tempblock
		}
		var entries []entry
		var texts []string
		for ; j < len(all) && all[j].List == all[i].List; j++ {
			e, err := parseEntry(all[j].Entry)
			if err != nil {
				continue
			}
			texts = append(texts, all[j].Entry)
			e.line = len(texts)
			entries = append(entries, e)
		}
		l, err := openImage(compile(def, entries, source{}), def.Path)
		if err != nil {
			return nil, fmt.Errorf("dynamic list %s: %w", def.Name, err)
		}
		l.Def, l.dyn = *def, texts
		out = append(out, l)
		i = j
	}
	return out, nil
}
