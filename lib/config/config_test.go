package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"mf/internal/golden"
)

// testCLI is a small command in the shape of the real ones: the globals,
// a few section keys of the usual types, envelope flags that no file may
// set, and a subcommand with a key of its own.
type testCLI struct {
	Globals
	Dir     string        `type:"path" default:"/etc/mf/lists" help:"Directory."`
	Name    string        `default:"plain" help:"A string."`
	List    []string      `sep:"none" help:"Repeatable."`
	Wait    time.Duration `default:"5s" help:"A duration."`
	Mode    string        `enum:"fast,slow,off" default:"fast" help:"An enum."`
	Strict  bool          `help:"A bool."`
	Comment string        `help:"Not set by default."`

	Check struct {
		Output string `enum:"stream,message,none" default:"stream" help:"Output."`
		From   string `group:"envelope" help:"Envelope sender of a bare message."`
	} `cmd:"" default:"withargs" help:"Check."`
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeConf writes an mf.conf in a fresh directory and returns its path.
func writeConf(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mf.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func parse(t testing.TB, args []string, env map[string]string) (*testCLI, *Result, error) {
	t.Helper()
	var c testCLI
	var out, errOut bytes.Buffer
	res, err := Parse(&c, "mf-test", "lists", "A test command.", args, &out, &errOut, envMap(env))
	return &c, res, err
}

func mustParse(t testing.TB, args []string, env map[string]string) (*testCLI, *Result) {
	t.Helper()
	c, res, err := parse(t, args, env)
	if err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return c, res
}

func TestDefaults(t *testing.T) {
	path := writeConf(t, "")
	c, _ := mustParse(t, []string{"--config", path, "check"}, nil)
	if c.Dir != "/etc/mf/lists" || c.Name != "plain" || c.Wait != 5*time.Second || c.Mode != "fast" ||
		c.Strict || c.List != nil || c.StateDir != "/var/lib/mf" || c.LockTimeout != 10*time.Second || c.Check.Output != "stream" {
		t.Errorf("defaults: %+v", c)
	}
}

const precedenceConf = `# every key from the file
state-dir /from/file
lock-timeout 3s
lists.dir /file/dir
lists.name file-name
lists.list /file/a.list
lists.list /file/b.list
lists.wait 7s
lists.mode slow
lists.strict
lists.output none
`

// Each key is set by a different source, so that one Parse shows the
// whole order: flag over environment over file over default.
func TestPrecedence(t *testing.T) {
	path := writeConf(t, precedenceConf)
	env := map[string]string{
		"MF_WAIT":      "9s",            // env beats file
		"MF_MODE":      "off",           // env beats file, flag beats env below
		"MF_NAME":      "",              // a set variable counts even when empty
		"MF_STATE_DIR": "/from/env",     // env beats file, for a global
		"MF_COMMENT":   "env comment",   // env beats default
		"MF_OUTPUT":    "message",       // env beats file, in the subcommand
		"MF_UNRELATED": "ignored value", // not a key of this command
	}
	args := []string{"--config", path, "--mode", "fast", "--list", "/flag.list", "check"}
	c, _ := mustParse(t, args, env)
	want := map[string]any{
		"Dir":         "/file/dir",                                         // file beats default
		"Name":        "",                                                  // empty env beats file
		"List":        []string{"/flag.list"},                              // flag replaces the file's values
		"Wait":        9 * time.Second,                                     // env
		"Mode":        "fast",                                              // flag beats env
		"Strict":      true,                                                // file, key alone means true
		"Comment":     "env comment",                                       // env
		"StateDir":    "/from/env",                                         // env
		"LockTimeout": 3 * time.Second,                                     // file
		"Syslog":      false,                                               // default
		"Output":      "message",                                           // env
		"Config":      path,                                                // flag
		"Verbose":     false,                                               // default
		"PrintConfig": false,                                               // default
		"From":        "",                                                  // default
		"Version":     reflect.Zero(reflect.TypeOf(c.Version)).Interface(), // untouched
	}
	got := map[string]any{
		"Dir": c.Dir, "Name": c.Name, "List": c.List, "Wait": c.Wait, "Mode": c.Mode,
		"Strict": c.Strict, "Comment": c.Comment, "StateDir": c.StateDir, "LockTimeout": c.LockTimeout,
		"Syslog": c.Syslog, "Output": c.Check.Output, "Config": c.Config, "Verbose": c.Verbose,
		"PrintConfig": c.PrintConfig, "From": c.Check.From, "Version": c.Version,
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	// The file's repeated key, with nothing above it, gives all its values
	// in order.
	c, _ = mustParse(t, []string{"--config", path, "check"}, nil)
	if !reflect.DeepEqual(c.List, []string{"/file/a.list", "/file/b.list"}) {
		t.Errorf("List from file = %q", c.List)
	}
	if c.Wait != 7*time.Second || c.Mode != "slow" || c.Name != "file-name" || c.StateDir != "/from/file" || c.Check.Output != "none" {
		t.Errorf("file values not applied: %+v", c)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	path := writeConf(t, "lists.name from-env-file\n")
	c, _ := mustParse(t, []string{"check"}, map[string]string{"MF_CONFIG": path})
	if c.Name != "from-env-file" {
		t.Errorf("MF_CONFIG file not read: name %q", c.Name)
	}
	// A file named by MF_CONFIG was asked for: missing, it is an error.
	_, _, err := parse(t, []string{"check"}, map[string]string{"MF_CONFIG": filepath.Join(t.TempDir(), "none.conf")})
	if err == nil {
		t.Error("missing MF_CONFIG file accepted")
	}
	// --config beats MF_CONFIG.
	other := writeConf(t, "lists.name from-flag-file\n")
	c, _ = mustParse(t, []string{"--config", other, "check"}, map[string]string{"MF_CONFIG": path})
	if c.Name != "from-flag-file" {
		t.Errorf("name %q, want the --config file's", c.Name)
	}
}

// TestConfigFromPipe reads the file from a pipe, as "--config <(...)"
// gives it: it can be read once, so the file is read once a parse, and
// the values and their origins are the pipe's.
func TestConfigFromPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.WriteString("lists.name from-pipe\nlists.wait 7s\n")
	w.Close()
	path := "/dev/fd/" + strconv.Itoa(int(r.Fd()))
	c, res := mustParse(t, []string{"--config", path, "--dir", "/d", "check"}, nil)
	if c.Name != "from-pipe" || c.Wait != 7*time.Second {
		t.Errorf("name %q, wait %v: the pipe's values not applied", c.Name, c.Wait)
	}
	if got := res.Origin("wait", 0); got != path+":2" {
		t.Errorf("wait's origin %q, want %s:2", got, path)
	}
}

func TestOwnSectionBeatsGlobal(t *testing.T) {
	for _, text := range []string{
		"state-dir /global\nlists.state-dir /section\n",
		"lists.state-dir /section\nstate-dir /global\n",
	} {
		c, _ := mustParse(t, []string{"--config", writeConf(t, text), "check"}, nil)
		if c.StateDir != "/section" {
			t.Errorf("%q: state-dir %q, want the section's", text, c.StateDir)
		}
	}
}

func TestOtherSectionsIgnored(t *testing.T) {
	text := "quota.limit 100\nquota.name other\nscan.clamd /run/clamd.sock\nbridge.mode bogus-and-unchecked\nlists.name mine\nstat.wait not-a-duration\n"
	c, _ := mustParse(t, []string{"--config", writeConf(t, text), "check"}, nil)
	if c.Name != "mine" || c.Mode != "fast" || c.Wait != 5*time.Second {
		t.Errorf("other sections leaked in: %+v", c)
	}
}

func TestFileErrorsNameFileAndLine(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"unknown key", "# comment\n\nstate-dir /x\nbogus 1\n", 4, `unknown key "bogus"`},
		{"unknown section key", "lists.bogus 1\n", 1, `unknown key "lists.bogus"`},
		{"unknown section", "nosuch.key 1\n", 1, "unknown key"},
		{"section key without section", "\nname x\n", 2, "lists.name"},
		{"given twice", "lists.name a\n# again:\nlists.name b\n", 3, "already set at line 1"},
		{"global given twice", "syslog\nstate-dir /a\nsyslog false\n", 3, "already set at line 1"},
		{"bad duration", "state-dir /x\nlists.wait 10 seconds\n", 2, "wait"},
		{"bad global duration", "\n\n\nlock-timeout soon\n", 4, "lock-timeout"},
		{"bad enum", "lists.name x\nlists.mode medium\n", 2, `"medium" is not one of fast, slow, off`},
		{"bad subcommand enum", "lists.output everything\n", 1, "everything"},
		{"bad bool", "lists.strict maybe\n", 1, "strict"},
		{"envelope flag", "lists.from <a@b>\n", 1, "unknown key"},
		{"config key", "config /etc/other.conf\n", 1, "unknown key"},
		{"print-config key", "print-config\n", 1, "unknown key"},
		{"help key", "help\n", 1, "unknown key"},
		{"version key", "version\n", 1, "unknown key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConf(t, tt.text)
			_, _, err := parse(t, []string{"--config", path, "check"}, nil)
			if err == nil {
				t.Fatalf("%q accepted", tt.text)
			}
			prefix := path + ":" + strconv.Itoa(tt.line) + ": "
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q, want it to start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
			var le *LineError
			if !errors.As(err, &le) || le.Line != tt.line || le.File != path {
				t.Errorf("error %#v is not a LineError for line %d", err, tt.line)
			}
		})
	}
}

func TestFirstBadLineReported(t *testing.T) {
	path := writeConf(t, "lists.name a\nzzz 1\naaa 2\nlists.name b\n")
	_, _, err := parse(t, []string{"--config", path, "check"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("error %v, want the first bad line, 2", err)
	}
}

func TestEnvironmentHidesBadFileValue(t *testing.T) {
	// The environment wins, so the file's value is never used; but the
	// file must still be well-formed.
	path := writeConf(t, "lists.wait soon\n")
	c, _ := mustParse(t, []string{"--config", path, "check"}, map[string]string{"MF_WAIT": "1s"})
	if c.Wait != time.Second {
		t.Errorf("wait %v, want 1s from the environment", c.Wait)
	}
	c, _ = mustParse(t, []string{"--config", path, "--wait", "2s", "check"}, nil)
	if c.Wait != 2*time.Second {
		t.Errorf("wait %v, want 2s from the flag", c.Wait)
	}
}

func TestMissingFiles(t *testing.T) {
	if _, err := os.Stat(DefaultFile); err == nil {
		t.Skipf("%s exists on this machine; cannot test its absence", DefaultFile)
	}
	c, _ := mustParse(t, []string{"check"}, nil)
	if c.Config != DefaultFile || c.Name != "plain" {
		t.Errorf("without a default file: %+v", c)
	}
	missing := filepath.Join(t.TempDir(), "missing.conf")
	if _, _, err := parse(t, []string{"--config", missing, "check"}, nil); err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("--config of a missing file: error %v, want one naming it", err)
	}
	if _, _, err := parse(t, []string{"-c", missing, "check"}, nil); err == nil {
		t.Error("-c of a missing file accepted")
	}
	// A directory is not a configuration file.
	if _, _, err := parse(t, []string{"--config", t.TempDir(), "check"}, nil); err == nil {
		t.Error("--config of a directory accepted")
	}
}

func TestSyntax(t *testing.T) {
	text := "  # indented comment\n\t\n" +
		"lists.name   spaced value  # trailing comment\n" +
		"\tlists.dir\t/tab/dir\t\n" +
		"--lists.mode slow\n" +
		"syslog # on\n" +
		"lists.comment a#b\n"
	c, _ := mustParse(t, []string{"--config", writeConf(t, text), "check"}, nil)
	if c.Name != "spaced value" || c.Dir != "/tab/dir" || c.Mode != "slow" || !c.Syslog || c.Comment != "a#b" {
		t.Errorf("got name %q dir %q mode %q syslog %v comment %q", c.Name, c.Dir, c.Mode, c.Syslog, c.Comment)
	}
}

func TestPrintShowsOrigins(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mf.conf")
	if err := os.WriteFile(path, []byte(precedenceConf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MF_WAIT": "9s", "MF_MODE": "off", "MF_VERBOSE": "true"}
	_, res := mustParse(t, []string{"--config", path, "--mode", "fast", "--print-config", "check"}, env)
	var b bytes.Buffer
	if err := res.Print(&b); err != nil {
		t.Fatal(err)
	}
	out := strings.ReplaceAll(b.String(), dir, "$DIR")
	golden.Check(t, "print-config.golden", []byte(out))
}

func TestPrintDefaults(t *testing.T) {
	path := writeConf(t, "")
	_, res := mustParse(t, []string{"--config", path, "check"}, nil)
	var b bytes.Buffer
	if err := res.Print(&b); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if !strings.HasSuffix(line, "# default") && !strings.HasSuffix(line, "is not set") {
			t.Errorf("line %q is not a default", line)
		}
	}
	for _, key := range []string{"lists.dir ", "lists.output ", "state-dir ", "lock-timeout ", "# lists.list is not set"} {
		if !strings.Contains(b.String(), key) {
			t.Errorf("output lacks %q:\n%s", key, b.String())
		}
	}
	for _, key := range []string{"config", "print-config", "help", "version", "from"} {
		if strings.Contains(b.String(), "\n"+key+" ") || strings.Contains(b.String(), "lists."+key+" ") {
			t.Errorf("output shows %q, which is not a key:\n%s", key, b.String())
		}
	}
}

func TestHelpExits(t *testing.T) {
	var c testCLI
	var out, errOut bytes.Buffer
	_, err := Parse(&c, "mf-test", "lists", "A test command.", []string{"--help"}, &out, &errOut, envMap(nil))
	var exit Exit
	if !errors.As(err, &exit) || exit != 0 {
		t.Fatalf("--help: error %v, want Exit(0)", err)
	}
	if !strings.Contains(out.String(), "A test command.") || !strings.Contains(out.String(), "--state-dir") {
		t.Errorf("help output:\n%s", out.String())
	}
	if Exit(3).Error() != "exit 3" {
		t.Errorf("Exit(3).Error() = %q", Exit(3).Error())
	}
}

func TestVersionExits(t *testing.T) {
	var c testCLI
	var out bytes.Buffer
	_, err := Parse(&c, "mf-test", "lists", "", []string{"--version"}, &out, &out, envMap(nil))
	var exit Exit
	if !errors.As(err, &exit) || exit != 0 {
		t.Fatalf("--version: error %v, want Exit(0)", err)
	}
	if !strings.HasPrefix(out.String(), "mf-test "+Version) {
		t.Errorf("version output %q", out.String())
	}
}

func TestBadCommandLine(t *testing.T) {
	for _, args := range [][]string{{"--nosuch"}, {"--mode", "medium", "check"}, {"--wait", "x", "check"}} {
		var exit Exit
		_, _, err := parse(t, append([]string{"--config", writeConf(t, "")}, args...), nil)
		if err == nil || errors.As(err, &exit) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
}

// FuzzConfigLoad: any bytes as mf.conf are refused or accepted, never a
// panic, and a refusal of a line names the file and the line.
func FuzzConfigLoad(f *testing.F) {
	f.Add([]byte(precedenceConf))
	f.Add([]byte("lists.mode medium\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "mf.conf")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var c testCLI
		var out bytes.Buffer
		res, err := Parse(&c, "mf-test", "lists", "", []string{"--config", path, "check"}, &out, &out, envMap(nil))
		var le *LineError
		if errors.As(err, &le) {
			if le.File != path || le.Line < 1 || le.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("LineError %v for a file of %d lines", le, bytes.Count(data, []byte("\n"))+1)
			}
			return
		}
		if err == nil {
			if err := res.Print(&out); err != nil {
				t.Fatal(err)
			}
		}
	})
}
