package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mf/lib/cli"
	"mf/lib/config"
)

// checkCmd is "mf-bridge check": the whole configuration, as milter
// start and SIGHUP check it.
type checkCmd struct{}

func (cmd *checkCmd) Run(env *cli.Env, c *root) error {
	srv, err := start(env, c, "")
	if err != nil {
		return err
	}
	errs, checked := srv.check(env.Ctx, srv.gen.Load(), os.Geteuid() == 0)
	if len(errs) > 0 {
		for _, e := range errs {
			env.Log.Errorf("%v", e)
		}
		return fmt.Errorf("%d error(s): the configuration would be refused", len(errs))
	}
	g := srv.gen.Load()
	file := g.cli.Config
	if _, err := os.Stat(file); err != nil {
		file += " (none)"
	}
	fmt.Fprintf(env.Stdout, "%s: good: %d stage(s)", file, len(g.cfg.Chain.Stages))
	if len(checked) > 0 {
		fmt.Fprintf(env.Stdout, "; also checked by %s", strings.Join(checked, ", "))
	}
	fmt.Fprintln(env.Stdout)
	return nil
}

// checkErrors are what a check found; as one error, the first and a count.
type checkErrors []error

func (e checkErrors) Error() string {
	if len(e) == 1 {
		return e[0].Error()
	}
	return fmt.Sprintf("%v (and %d more: mf-bridge check lists them)", e[0], len(e)-1)
}

// checkAll is check as one error, for start and reload.
func (srv *server) checkAll(ctx context.Context, g *generation) error {
	if errs, _ := srv.check(ctx, g, os.Geteuid() == 0); len(errs) > 0 {
		return checkErrors(errs)
	}
	return nil
}

// check checks what parsing the bridge's own section cannot: that every
// stage's program is there for the stage user to run, and every other mf
// command's part of mf.conf, by running it with --check-config (as the
// stage user, asUser when the check runs as root): each command refuses
// the keys of its own section it does not know and checks the files its
// values name. Keys of sections no command owns are refused by the
// bridge's own parse.
func (srv *server) check(ctx context.Context, g *generation, asUser bool) (errs []error, checked []string) {
	c, res := g.cli, g.res
	// Whom the stages run as: --stage-user if the bridge switches users,
	// else --user once a root bridge drops root, else the bridge itself.
	// Only a root bridge can run the commands' checks as that user; one
	// that cannot checks their keys alone (--print-config), not the files
	// and store the stage user would reach, rather than judge those as
	// the wrong user.
	var cred *syscall.Credential
	full := true
	if u := g.cfg.Chain.Runner.User; u != nil {
		cred, full = u.Credential, os.Geteuid() == 0 || hasSetIDCaps()
	} else if asUser {
		var err error
		if cred, err = credential(c.User); err != nil {
			errs = append(errs, err) // and the rest is checked as root
		}
	}
	run := cred
	if !full {
		run = nil
	}
	mode := "--check-config"
	if !full {
		mode = "--print-config"
	}
	env := g.cfg.Chain.Runner.Env
	path := envValue(env, "PATH")
	self := ""
	if exe, err := os.Executable(); err == nil {
		self = filepath.Dir(exe)
	}
	done := map[string]bool{}
	for i, st := range g.cfg.Chain.Stages {
		where := res.Origin("stage", i)
		if !strings.Contains(where, ":") {
			where = "--stage (" + where + ")"
		}
		prog, err := findProgram(st.Argv[0], path)
		if err == nil {
			err = executable(prog, cred)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: stage %s: %w", where, st.Name, err))
			continue
		}
		if mf := mfCommand(st.Argv[0]); mf != nil {
			args := append([]string{mode}, st.Argv[1:]...)
			errs = append(errs, runCheck(ctx, prog, args, env, run, where+": stage "+st.Name)...)
			if !done[mf.Program] {
				checked = append(checked, mf.Program)
			}
			done[mf.Program] = true
		}
	}
	for _, cmd := range config.Commands {
		where := res.SectionOrigin(cmd.Section)
		if cmd.Program == program.Name || where == "" || done[cmd.Program] {
			continue
		}
		prog, err := findProgram(filepath.Join(self, cmd.Program), "")
		if err != nil {
			prog, err = findProgram(cmd.Program, path)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: section %s is read by %s, which is not installed next to mf-bridge or on PATH", where, cmd.Section, cmd.Program))
			continue
		}
		args := append([]string{mode}, cmd.Args...)
		errs = append(errs, runCheck(ctx, prog, args, env, run, "")...)
		checked = append(checked, cmd.Program)
	}
	return errs, checked
}

// mfCommand is the mf command a stage runs, if it runs one.
func mfCommand(argv0 string) *config.Command {
	i := slices.IndexFunc(config.Commands, func(c config.Command) bool { return c.Program == filepath.Base(argv0) })
	if i < 0 || config.Commands[i].Program == program.Name {
		return nil
	}
	return &config.Commands[i]
}

// sibling is the mf command installed next to mf-bridge for a stage
// that names one without a directory ("mf-lists check"), so the chain
// runs the commands of the same installation whatever PATH holds; any
// other program is left to PATH.
func sibling(prog string) string {
	if strings.Contains(prog, "/") || mfCommand(prog) == nil {
		return prog
	}
	exe, err := os.Executable()
	if err != nil {
		return prog
	}
	p := filepath.Join(filepath.Dir(exe), prog)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return prog
}

// runCheck runs one command's --check-config; each line of its errors is
// one error, after where (a stage line) if given.
func runCheck(ctx context.Context, prog string, args, env []string, cred *syscall.Credential, where string) []error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	err := cmd.Run()
	name := filepath.Base(prog)
	if err == nil {
		return nil
	}
	var errs []error
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		l = strings.TrimSuffix(strings.TrimPrefix(l, name+": error: "), " (see "+name+" --help)")
		if l == "" || strings.HasPrefix(l, name+": ") {
			continue // its warnings and notes, not errors
		}
		if where != "" {
			l = where + ": " + name + ": " + l
		}
		errs = append(errs, errors.New(l))
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s --check-config: %v", prog, err))
	}
	return errs
}

// findProgram finds prog as exec would: a name with a slash as it is,
// otherwise in the directories of path.
func findProgram(prog, path string) (string, error) {
	if prog == "" {
		return "", errors.New("empty program name")
	}
	if strings.Contains(prog, "/") {
		fi, err := os.Stat(prog)
		if err != nil {
			return "", fmt.Errorf("program %s: %w", prog, errors.Unwrap(err))
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("program %s is not a file", prog)
		}
		return prog, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %q not found on PATH %s", prog, path)
}

// executable checks that the stage user may run p: by the mode bits of p
// and of the directories above it for cred; without one, as this process.
func executable(p string, cred *syscall.Credential) error {
	if cred == nil {
		if err := unix.Access(p, unix.X_OK); err != nil {
			return fmt.Errorf("program %s: not executable: %w", p, err)
		}
		return nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	for q, bit := abs, os.FileMode(1); ; q = filepath.Dir(q) {
		fi, err := os.Stat(q)
		if err != nil {
			return err
		}
		if !allowed(fi, cred, bit) {
			what := "run"
			if q != abs {
				what = "enter " + q + " to run"
			}
			return fmt.Errorf("program %s: user %d may not %s it", p, cred.Uid, what)
		}
		if q == "/" {
			return nil
		}
	}
}

// allowed reports whether cred has the permission bit (1 execute/search)
// on fi by its owner, group and other bits.
func allowed(fi os.FileInfo, cred *syscall.Credential, bit os.FileMode) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	m := fi.Mode().Perm()
	if st.Uid == cred.Uid {
		return m&(bit<<6) != 0
	}
	if st.Gid == cred.Gid || slices.Contains(cred.Groups, st.Gid) {
		return m&(bit<<3) != 0
	}
	return m&bit != 0
}

// hasSetIDCaps reports whether this thread, and so every thread (the
// unit's AmbientCapabilities), may start a process as another user: a
// root bridge that dropped root keeps them on one thread alone.
func hasSetIDCaps() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return false
	}
	const want = 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID
	return data[0].Effective&want == want && data[0].Permitted&want == want
}

// credential is the stage user's, for a check run as root.
func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w: stages never run as root; create the user (useradd --system %s) or name another with --user", name, err, name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 {
		return nil, fmt.Errorf("user %q is root: stages never run as root", name)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, nil
}

func envValue(env []string, k string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v
		}
	}
	return ""
}
