# single=1 checks single quotes too, single=2 takes a closing one
# without an opening one for an apostrophe (groff renders ' as one).
# quotes.awk: paragraphs of a rendered page (blank-line separated) whose
# quotes do not pair: an opening quote inside another of its kind, a
# closing one without an opening one, or one left open at the end.
function flush(   s, i, c, d1, d2, bad) {
	if (para == "") return
	s = para
	gsub(/‘/, "\001", s); gsub(/’/, "\002", s); gsub(/“/, "\003", s); gsub(/”/, "\004", s)
	d1 = 0; d2 = 0; bad = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "\001" && single) { if (++d1 > 1) bad = "nested single quotes" }
		else if (c == "\002" && single) { if (--d1 < 0) { if (single == 2) d1 = 0; else bad = "closing single quote without an opening one" } }
		else if (c == "\003") { if (++d2 > 1) bad = "nested double quotes" }
		else if (c == "\004") { if (--d2 < 0) bad = "closing double quote without an opening one" }
		if (bad != "") break
	}
	if (bad == "" && (d1 != 0 || d2 != 0)) bad = "a quote left open"
	if (bad == "") bad = brackets(para)
	if (bad != "") { printf "%s: %s:\n%s\n", FILENAME, bad, para; n++ }
	para = ""
}
# brackets: an optional part glued to a word ("user[:group]") that holds
# a space has swallowed what follows it ("user[:group, next item]").
function brackets(s,   i, j, d, c, p) {
	for (i = 2; i <= length(s); i++) {
		if (substr(s, i, 1) != "[") continue
		p = substr(s, i - 1, 1)
		if (p ~ /[ \t[(:"=]/) continue # a list, or JSON
		d = 0
		for (j = i; j <= length(s); j++) {
			c = substr(s, j, 1)
			if (c == "[") d++
			else if (c == "]" && --d == 0) break
			else if (c == " " && substr(s, j + 1, 3) != "...") return "an optional part glued to a word holds a space: " substr(s, i - 10 > 0 ? i - 10 : 1, 50)
		}
	}
	return ""
}
/^[ \t]*$/ { flush(); next }
{ sub(/^[ \t]+/, ""); para = para (para == "" ? "" : " ") $0 }
END { flush(); exit n > 0 }
