// Package rule is the content rule: a pattern on a header, the decoded
// body text or an attachment (name, declared or detected type, size,
// names inside zip archives) and the outcome it asks for. Rule files
// hold one rule a line and every error names file:line.
//
//	# OUTCOME TARGET PATTERN [OPTION=VALUE...]
//	reject     filename     *.exe                 reply="550 5.7.1 Executables are not accepted"
//	reject     zip-name     /\.(exe|scr|js)$/i
//	quarantine type         application/x-dosexec
//	tag        header:Subject /viagra/i           subject="[SPAM] " header="X-Spam-Rule: pills"
//	tempfail   size         >20M
//	reject     body         /wire the money/i     block=client:scam:6h
package rule

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/mattn/go-shellwords"

	"mf/lib/config"
	"mf/lib/mime"
	"mf/lib/name"
	"mf/lib/scan/outcome"
)

// Targets a rule can look at.
var Targets = []string{"header", "header:NAME", "body", "filename", "declared-type", "type", "size", "zip-name", "message-size"}

// Rule is one line of a rule file.
type Rule struct {
	Name    string // name= or FILE:LINE
	Where   string // FILE:LINE
	Target  string // one of Targets, "header" with Field for header:NAME
	Field   string // header:NAME's NAME, canonical
	Pattern string
	re      *regexp.Regexp
	glob    string // lower-case shell pattern for names and types
	size    int64  // size and message-size: more than this
	outcome.Outcome
}

// MaxLine bounds a rule line.
const MaxLine = 64 << 10

// ParseFile reads a rule file.
func ParseFile(name string) ([]*Rule, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, name)
}

// Parse reads rules from r, one a line; name is the file, for errors.
func Parse(r io.Reader, name string) ([]*Rule, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, MaxLine)
	var rules []*Rule
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		ru, err := ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		ru.Where = fmt.Sprintf("%s:%d", name, n)
		if ru.Name == "" {
			ru.Name = ru.Where
		}
		rules = append(rules, ru)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s: a line is longer than %d bytes", name, MaxLine)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rules, nil
}

// ParseLine reads one rule: OUTCOME TARGET PATTERN [OPTION=VALUE...].
func ParseLine(line string) (*Rule, error) {
	if !utf8Valid(line) {
		return nil, errors.New("not UTF-8")
	}
	word, rest := cut(line)
	a, err := outcome.ParseAction(word)
	if err != nil {
		return nil, err
	}
	ru := &Rule{Outcome: outcome.Outcome{Action: a}}
	target, rest := cut(rest)
	if target == "" {
		return nil, errors.New("no target: want OUTCOME TARGET PATTERN")
	}
	ru.Target = target
	if f, ok := strings.CutPrefix(target, "header:"); ok {
		if f == "" || strings.ContainsAny(f, ": \t") {
			return nil, fmt.Errorf("bad header name %q", f)
		}
		ru.Target, ru.Field = "header", canonical(f)
	}
	switch ru.Target {
	case "header", "body", "filename", "declared-type", "type", "size", "zip-name", "message-size":
	default:
		return nil, fmt.Errorf("unknown target %q (want one of %s)", target, strings.Join(Targets, ", "))
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" {
		return nil, fmt.Errorf("%s: no pattern", target)
	}
	if rest[0] == '/' {
		end := closing(rest)
		if end < 0 {
			return nil, errors.New("a /pattern/ without its closing /")
		}
		after := rest[end+1:]
		j := strings.IndexAny(after, " \t")
		if j < 0 {
			j = len(after)
		}
		flags := after[:j]
		after = after[j:]
		if strings.Trim(flags, "ims") != "" {
			return nil, fmt.Errorf("unknown regexp flag in %q (want i, m, s)", flags)
		}
		ru.Pattern = rest[:end+1] + flags
		expr := rest[1:end]
		if flags != "" {
			expr = "(?" + flags + ")" + expr
		}
		if ru.Target == "size" || ru.Target == "message-size" {
			return nil, fmt.Errorf("%s takes >SIZE, not a /pattern/", ru.Target)
		}
		if ru.re, err = regexp.Compile(expr); err != nil {
			return nil, fmt.Errorf("pattern %s: %w", ru.Pattern, err)
		}
		rest = after
	} else {
		var p string
		p, rest = cut(rest)
		ru.Pattern = p
		switch ru.Target {
		case "size", "message-size":
			s, ok := strings.CutPrefix(p, ">")
			if !ok {
				return nil, fmt.Errorf("%s: want >SIZE (as >10M), not %q", ru.Target, p)
			}
			if ru.size, err = config.ParseSize(s); err != nil {
				return nil, fmt.Errorf("%s: %w", ru.Target, err)
			}
		case "header", "body":
			return nil, fmt.Errorf("%s: want a /regexp/, not %q", ru.Target, p)
		default:
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("bad pattern %q: %w", p, err)
			}
			ru.glob = strings.ToLower(p)
		}
	}
	words, err := shellwords.Parse(rest)
	if err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return nil, fmt.Errorf("option %q: want KEY=VALUE", w)
		}
		if k == "name" {
			if err := name.Valid(v); err != nil {
				return nil, err
			}
			ru.Name = v
			continue
		}
		known, err := ru.Outcome.Option(k, v)
		if err != nil {
			return nil, err
		}
		if !known {
			return nil, fmt.Errorf("unknown option %q (want reply, subject, header, block, name)", k)
		}
	}
	if err := ru.Outcome.Check(); err != nil {
		return nil, err
	}
	return ru, nil
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// cut splits off the first word.
func cut(s string) (string, string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// closing finds the / that ends the /pattern/ s starts with: the last
// unescaped / followed by flags and whitespace or the end of the line
// (a / inside the pattern is written \/ or is followed by more of it).
func closing(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '/':
			j := i + 1
			for j < len(s) && strings.IndexByte("ims", s[j]) >= 0 {
				j++
			}
			if j == len(s) || s[j] == ' ' || s[j] == '\t' {
				return i
			}
		}
	}
	return -1
}

func canonical(f string) string {
	parts := strings.Split(strings.ToLower(f), "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// Hit is a rule that matched and what it matched on.
type Hit struct {
	Rule *Rule
	What string // the part path and the matched name or value, for the log
}

// Match tries every rule on a walked message of size bytes and returns
// the hits, in rule order, one per rule.
func Match(rules []*Rule, res *mime.Result, size int64) []Hit {
	var hits []Hit
	for _, ru := range rules {
		if what, ok := ru.match(res, size); ok {
			hits = append(hits, Hit{ru, what})
		}
	}
	return hits
}

func (ru *Rule) str(s string) bool {
	if ru.re != nil {
		return ru.re.MatchString(s)
	}
	ok, _ := path.Match(ru.glob, strings.ToLower(s))
	return ok
}

func (ru *Rule) match(res *mime.Result, size int64) (string, bool) {
	switch ru.Target {
	case "message-size":
		return strconv.FormatInt(size, 10), size > ru.size
	case "header":
		fs := res.Header.Fields()
		for fs.Next() {
			v, err := fs.Text()
			if err != nil {
				v = fs.Value()
			}
			if ru.Field != "" {
				if canonical(fs.Key()) == ru.Field && ru.re.MatchString(v) {
					return ru.Field, true
				}
			} else if ru.re.MatchString(fs.Key() + ": " + v) {
				return fs.Key(), true
			}
		}
		return "", false
	}
	for i := range res.Parts {
		p := &res.Parts[i]
		switch ru.Target {
		case "body":
			if p.Text != nil && !p.Attachment() && ru.re.Match(p.Text) {
				return "part " + p.Path, true
			}
		case "filename":
			if p.Filename != "" && ru.str(p.Filename) {
				return "part " + p.Path + " " + p.Filename, true
			}
		case "declared-type":
			if p.DeclaredType != "" && ru.str(p.DeclaredType) {
				return "part " + p.Path + " " + p.DeclaredType, true
			}
		case "type":
			if p.DetectedType != "" && ru.str(p.DetectedType) {
				return "part " + p.Path + " " + p.DetectedType, true
			}
		case "size":
			if p.Attachment() && p.Size > ru.size {
				return "part " + p.Path + " " + strconv.FormatInt(p.Size, 10), true
			}
		case "zip-name":
			for _, n := range p.ZipNames {
				if ru.str(n) || ru.str(path.Base(n)) && ru.re == nil {
					return "part " + p.Path + " " + n, true
				}
			}
		}
	}
	return "", false
}
