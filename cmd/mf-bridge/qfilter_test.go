package main

import (
	"testing"
)

func TestQfilterRefusal(t *testing.T) {
	for _, tc := range []struct {
		code int
		text string
		want string
	}{
		{31, "", "reject 550 5.7.1 Message rejected"},
		{31, "Dno thanks\n", "reject 550 no thanks"},
		{31, "D5.7.1 no thanks", "reject 550 5.7.1 no thanks"},
		{71, "", "tempfail 451 4.7.1 Try again later"},
		{82, "Z4.2.2 full", "tempfail 451 4.2.2 full"},
		{1, "oops", "tempfail 451 oops"},
		{12, "5.7.1 bad", "reject 550 5.7.1 bad"},
		{111, "4.7.1 later", "tempfail 451 4.7.1 later"},
	} {
		if got := qfilterRefusal(tc.code, []byte(tc.text)).String(); got != tc.want {
			t.Errorf("exit %d %q: %q, want %q", tc.code, tc.text, got, tc.want)
		}
	}
}
