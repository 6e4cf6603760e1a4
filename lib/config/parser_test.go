package config

import (
	"io"
	"os"
	"testing"
	"time"

	"mf/lib/resident"
)

// TestParserAgain: a parser used again gives what a fresh parse gives:
// flags reset, the environment and an edited file seen, the previous
// parse reused only while nothing it depends on changed.
func TestParserAgain(t *testing.T) {
	conf := writeConf(t, "lists.name from-file\n")
	time.Sleep(resident.Settle) // until then, the file just written is read each time
	var c testCLI
	p, err := NewParser(&c, "mf-test", "lists", "A test command.")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(env map[string]string, args ...string) *Result {
		t.Helper()
		res, err := p.Parse(append([]string{"--config", conf}, args...), io.Discard, io.Discard, envMap(env))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	parse(nil, "--strict", "--list", "a", "check")
	if !c.Strict || len(c.List) != 1 || c.Name != "from-file" {
		t.Fatalf("first parse: %+v", c)
	}
	first := parse(nil, "check")
	if c.Strict || len(c.List) != 0 {
		t.Errorf("flags of the previous parse kept: %+v", c)
	}
	again := parse(map[string]string{"SENDER": "x@example.org"}, "check")
	if again.Ctx != first.Ctx {
		t.Error("same command line, MF_ variables and file: parsed again")
	}
	if parse(map[string]string{"MF_NAME": "from-env"}, "check"); c.Name != "from-env" {
		t.Errorf("MF_NAME not seen: %q", c.Name)
	}
	if err := os.WriteFile(conf, []byte("lists.name edited\nlists.mode slow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if parse(nil, "check"); c.Name != "edited" || c.Mode != "slow" {
		t.Errorf("edited file not seen: %q %q", c.Name, c.Mode)
	}
	if res := parse(nil, "check"); res.Origin("name", 0) != conf+":1" {
		t.Errorf("origin %q", res.Origin("name", 0))
	}
}
