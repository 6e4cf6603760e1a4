package qmail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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
