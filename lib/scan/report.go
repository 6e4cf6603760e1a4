package scan

import (
	"fmt"
	"strconv"
	"strings"
)

func forUser(u string) string {
	if u == "" {
		return ""
	}
	return " user " + u
}

// clean makes a value fit one header line.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return s
}

// short is clean for a header field: at most 200 bytes.
func short(s string) string {
	s = clean(s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "")
	}
	return s
}

func (s *Scanner) scannedFields(rep *Report) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if r.Engine.Kind != Clamd || seen[r.Engine.Name] || r.Err != nil || r.Skipped != "" {
			continue
		}
		seen[r.Engine.Name] = true
		if len(out) == 0 {
			out = append(out, "X-Virus-Scanned: ClamAV using mf-scan")
		}
		status := "Clean"
		if r.Status == "infected" {
			status = "Infected"
		}
		out = append(out, "X-Virus-Status: "+status)
	}
	return out
}

// resultValue is the mf result field: the outcome, what each engine
// said and took, the rules that hit, what was skipped and undecoded.
func resultValue(rep *Report, rules bool) string {
	var b strings.Builder
	b.WriteString(rep.Outcome.Action.String())
	if rep.By != "" {
		b.WriteString(" by " + rep.By)
	}
	var skipped []string
	for _, r := range rep.Results {
		b.WriteString("; " + r.Engine.Name + "=" + r.Status)
		if r.User != "" {
			b.WriteString(" user=" + clean(strings.ReplaceAll(r.User, ";", "%3B")))
		}
		if r.Engine.Kind == Spamd && r.Status != "skipped" && r.Err == nil && r.Detail != "" {
			b.WriteString(" " + r.Detail)
		}
		if r.Cached {
			b.WriteString(" cached")
		} else {
			fmt.Fprintf(&b, " %.0fms", float64(r.Dur.Microseconds())/1000)
		}
		if r.Skipped != "" {
			skipped = append(skipped, r.Engine.Name+":"+r.Skipped)
		}
	}
	if rules {
		names := []string{}
		for _, h := range rep.Hits {
			names = append(names, h.Rule.Name)
		}
		if len(names) == 0 {
			b.WriteString("; rules=none")
		} else {
			b.WriteString("; rules=" + clean(strings.Join(names, ",")))
		}
	}
	if len(skipped) > 0 {
		b.WriteString("; skipped=" + strings.Join(skipped, ","))
	}
	if len(rep.Problems) > 0 {
		var paths []string
		for _, p := range rep.Problems {
			path, _, _ := strings.Cut(p, ":")
			if len(paths) == 0 || paths[len(paths)-1] != path {
				paths = append(paths, path)
			}
		}
		b.WriteString("; undecoded=" + clean(strings.Join(paths, ",")))
	}
	return b.String()
}

func trace(rep *Report) string {
	var f []string
	if rep.By != "" {
		f = append(f, "by="+rep.By)
	}
	for _, r := range rep.Results {
		v := r.Engine.Name + "=" + r.Status
		if r.Skipped != "" {
			v += ":" + r.Skipped
		}
		if r.Cached {
			v += ":cached"
		}
		f = append(f, v)
	}
	if len(rep.Hits) > 0 {
		f = append(f, "rules="+strconv.Itoa(len(rep.Hits)))
	}
	if len(rep.Problems) > 0 {
		f = append(f, "undecoded="+strconv.Itoa(len(rep.Problems)))
	}
	if len(rep.Blocked) > 0 {
		f = append(f, "blocked="+strconv.Itoa(len(rep.Blocked)))
	}
	return strings.Join(f, " ")
}
