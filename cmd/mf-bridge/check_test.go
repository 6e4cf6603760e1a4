package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestFindProgram(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "stage")
	os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
	if got, err := findProgram("stage", "/nonexistent:"+dir); err != nil || got != p {
		t.Errorf("findProgram on PATH = %q, %v; want %s", got, err, p)
	}
	if _, err := findProgram("spamcc", dir); err == nil || !strings.Contains(err.Error(), `"spamcc" not found on PATH`) {
		t.Errorf("a missing program: %v", err)
	}
	if _, err := findProgram("", dir); err == nil {
		t.Error("an empty program name is found")
	}
	if _, err := findProgram(dir, ""); err == nil {
		t.Error("a directory is taken for a program")
	}
}

// As root the check judges by the stage user's permission bits, since
// root may run anything.
func TestExecutableAsStageUser(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // the test's own, made 0700
	os.Chmod(dir, 0o755)
	p := filepath.Join(dir, "stage")
	os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700)
	uid := uint32(os.Getuid())
	other := &syscall.Credential{Uid: uid + 4242, Gid: uint32(os.Getgid()) + 4242}
	if err := executable(p, other); err == nil || !strings.Contains(err.Error(), "may not run") {
		t.Errorf("mode 0700 of another user: %v, want refused", err)
	}
	if err := executable(p, &syscall.Credential{Uid: uid}); err != nil {
		t.Errorf("the owner: %v", err)
	}
	os.Chmod(p, 0o755)
	if err := executable(p, other); err != nil {
		t.Errorf("mode 0755: %v", err)
	}
	os.Chmod(dir, 0o700)
	defer os.Chmod(dir, 0o755)
	if err := executable(p, other); err == nil || !strings.Contains(err.Error(), "may not enter") {
		t.Errorf("a directory the user cannot enter: %v", err)
	}
}

func TestMfCommand(t *testing.T) {
	if c := mfCommand("/usr/bin/mf-lists"); c == nil || c.Section != "lists" {
		t.Errorf("mf-lists: %v", c)
	}
	if c := mfCommand("mf-bridge"); c != nil {
		t.Error("mf-bridge is not checked as a stage command")
	}
	if c := mfCommand("spamc"); c != nil {
		t.Error("spamc taken for an mf command")
	}
}
