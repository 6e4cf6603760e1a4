package config

import (
	"reflect"
	"testing"
)

func TestWords(t *testing.T) {
	for in, want := range map[string][]string{
		`a key=sender  limit=1/1h`:          {"a", "key=sender", "limit=1/1h"},
		`x reply="451 4.7.1 Slow down" dry`: {"x", "reply=451 4.7.1 Slow down", "dry"},
		"\ta\t b ":                          {"a", "b"},
		`e ""`:                              {"e", ""},
	} {
		got, err := Words(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Words(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`a "open`, "a\x01b", "a\x7f"} {
		if _, err := Words(bad); err == nil {
			t.Errorf("Words(%q): no error", bad)
		}
	}
}
