package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// when reads a time expression as the start and end of what it names:
// a day ("today", "yesterday", "2026-03-29") is midnight to midnight in
// loc, however long DST makes it; an instant ("2026-03-29 02:30",
// RFC 3339, "now", "-7d", "-12h") starts and ends at once.
func when(s string, now time.Time, loc *time.Location) (start, end time.Time, err error) {
	now = now.In(loc)
	midnight := func(t time.Time, days int) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day()+days, 0, 0, 0, 0, loc)
	}
	switch s {
	case "today":
		return midnight(now, 0), midnight(now, 1), nil
	case "yesterday":
		return midnight(now, -1), midnight(now, 0), nil
	case "now":
		return now, now, nil
	}
	if rest, ok := strings.CutPrefix(s, "-"); ok && len(rest) >= 2 {
		n, err := strconv.Atoi(rest[:len(rest)-1])
		if err == nil && n >= 0 {
			switch rest[len(rest)-1] {
			case 'd':
				t := now.AddDate(0, 0, -n)
				return t, t, nil
			case 'w':
				t := now.AddDate(0, 0, -7*n)
				return t, t, nil
			case 'h':
				t := now.Add(-time.Duration(n) * time.Hour)
				return t, t, nil
			case 'm':
				t := now.Add(-time.Duration(n) * time.Minute)
				return t, t, nil
			}
		}
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return midnight(t, 0), midnight(t, 1), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, t, nil
		}
	}
	return start, end, fmt.Errorf("%q is not a time: want today, yesterday, now, -7d, -12h, YYYY-MM-DD, \"YYYY-MM-DD HH:MM[:SS]\" or RFC 3339", s)
}
