package qmail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"mf/lib/spool"
)

// DefaultQueue is the real qmail-queue.
const DefaultQueue = "/var/qmail/bin/qmail-queue"

// Queue runs the real qmail-queue at path with msg on fd 0 and env on
// fd 1, and returns its exit status, which the caller passes on
// unchanged. extra are descriptors 3, 4, ... handed through (nil: closed),
// so a custom error descriptor reaches a qmail-queue that writes it. An
// error is a qmail-queue that could not be started or died by a signal.
func Queue(path string, msg *os.File, env *Envelope, stderr io.Writer, extra []*os.File) (int, error) {
	er, ew, err := os.Pipe()
	if err != nil {
		return ExitBug, fmt.Errorf("qmail-queue: %w", err)
	}
	defer er.Close()
	cmd := exec.Command(path)
	cmd.Stdin = msg
	cmd.Stdout = er // the child reads its fd 1
	cmd.Stderr = stderr
	cmd.ExtraFiles = extra
	if err := cmd.Start(); err != nil {
		ew.Close()
		return ExitBug, fmt.Errorf("qmail-queue: %w", err)
	}
	er.Close()
	// The child reads fd 0 to its end before fd 1, as qmail-queue does:
	// writing the envelope may block until then, so it is written while
	// the child runs.
	werr := make(chan error, 1)
	go func() {
		_, err := ew.Write(env.Bytes())
		ew.Close()
		werr <- err
	}()
	err = cmd.Wait()
	<-werr // a write error is the child's: it exits 54 or 91 for it
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() < 0 {
			return ExitBug, fmt.Errorf("qmail-queue: %v", err)
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return ExitBug, fmt.Errorf("qmail-queue: %w", err)
	}
	return ExitQueued, nil
}

// Exec becomes the real qmail-queue at path, as qmail-qfilter does: msg
// on fd 0, env on fd 1, every other open descriptor (the custom error
// one) left as it is, so its exit status is the caller's with no process
// left waiting for it. It returns only when that failed; the caller's
// descriptors 0 and 1 may then have been replaced.
func Exec(path string, msg *os.File, env *Envelope) error {
	envFile, err := EnvelopeFile(env)
	if err != nil {
		return err
	}
	if _, err := msg.Seek(0, io.SeekCurrent); err != nil {
		return err
	}
	if err := syscall.Dup2(int(msg.Fd()), 0); err != nil {
		return fmt.Errorf("qmail-queue: fd 0: %w", err)
	}
	if err := syscall.Dup2(int(envFile.Fd()), 1); err != nil {
		return fmt.Errorf("qmail-queue: fd 1: %w", err)
	}
	err = syscall.Exec(path, []string{path}, os.Environ())
	// Reachable until the exec: were either already fd 0 or 1, its Dup2
	// copied nothing, and its finalizer would close what qmail-queue reads.
	runtime.KeepAlive(msg)
	runtime.KeepAlive(envFile)
	return fmt.Errorf("qmail-queue: exec %s: %w", path, err)
}

// EnvelopeFile is env in a file qmail-queue can read as its fd 1, at
// its first byte, with no writer left running: a spool file, in memory
// unless the envelope is huge.
func EnvelopeFile(env *Envelope) (*os.File, error) {
	f, _, err := spool.Fill("", "mf-env-*", bytes.NewReader(env.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("qmail-queue: envelope: %w", err)
	}
	return f, nil
}
