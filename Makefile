# mf: small programs that filter mail for sendmail, Postfix and qmail.

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
COMPDIR ?= $(PREFIX)/share/bash-completion/completions
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 60s

CMDS    = mf-lists mf-bridge mf-stat mf-quota mf-accept mf-scan
# Run by mf-bridge, beside it, for each stage; not by hand.
HELPERS = mf-stage-supervisor
# Started for every stage run, and by qmail-smtpd for every message in
# front of mf-bridge qmail-server: so they are C and static where there
# is a C compiler (etc/cc says how). Without one the Go
# mf-stage-supervisor stays, and mf-qmail-queue-client is not built
# (mf-qmail-queue-client(8)).
CSRC    = cmd/mf-stage-supervisor/c/mf-stage-supervisor.c cmd/mf-qmail-queue-client/mf-qmail-queue-client.c
CLIENT  = mf-qmail-queue-client
RUNDIR  ?= /run/mf-bridge
MAN     = man/mf.7 man/mf-stream.5 man/mf-config.5 man/mf-state.5 man/mf-lists.1 man/mf-bridge.8 man/mf-stage-supervisor.8 man/mf-qmail-queue-client.8 man/mf-stat.1 man/mf-quota.1 man/mf-accept.1 man/mf-scan.1
LDFLAGS = -X mf/lib/config.Version=$(VERSION) -X mf/lib/config.DefaultFile=$(SYSCONFDIR)/mf/mf.conf

.PHONY: all run test unit t lint deps bench fuzz install clean

# Static binaries (no cgo), and the benchmarks build theirs the same way:
# a stage or the qmail-queue shim is started for every message, and
# libc's dynamic loader cost each start about a millisecond. User and
# group names are then read from /etc/passwd and /etc/group, not NSS
# (mf-bridge(8)); DNS never went through libc (lib/dns).
all bench: export CGO_ENABLED = 0
all:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(CMDS) $(HELPERS))
	@for src in $(CSRC); do \
		CC=$(CC) sh etc/cc bin/$$(basename $$src .c) $$src -DSOCKET='"$(RUNDIR)/qmail.sock"'; \
		rc=$$?; [ $$rc = 0 ] || [ $$rc = 2 ] || exit 1; \
	done

# The main job on the embedded default: the chain of etc/mf.conf on the
# example messages, then served as a milter on 127.0.0.1:7357.
run: all
	@sh etc/run

# Everything: what needs installing first, static checks, unit tests
# with the race detector, the black-box tests in t/.
test: deps all lint unit t

deps:
	@sh t/deps

unit:
	$(GO) test -race -count=1 ./...

t:
	@sh t/run

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	@if command -v mandoc >/dev/null; then \
		out=$$(mandoc -Tlint -Wwarning $(MAN) 2>&1); \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
		echo "mandoc -Tlint: clean"; \
	elif [ -n "$$CI" ]; then echo "mandoc missing (apt-get install mandoc)"; exit 1; \
	else echo "mandoc missing: man pages not linted"; fi

# Ratios against a baseline measured in the same run; then mail through
# a real Postfix with and without mf-bridge (as root).
bench: all
	$(GO) test -run=NONE -bench=. -benchtime=30x -count=1 ./lib/lists/ ./cmd/mf-lists/ | grep -v '^goos\|^goarch\|^pkg\|^cpu'
	$(GO) test -run=NONE -bench=. -benchtime=300x -count=1 ./lib/chain/ | grep -v '^goos\|^goarch\|^pkg\|^cpu'
	$(GO) test -run=NONE -bench=. -benchtime=300x -count=1 ./cmd/mf-bridge/ ./lib/bridge/ | grep -v '^goos\|^goarch\|^pkg\|^cpu'
	@# In-process stages never run as root: as root, their benchmark runs as nobody.
	@if [ "$$(id -u)" = 0 ]; then \
		$(GO) test -c -o bin/.bridge.test ./cmd/mf-bridge/ && \
		(cd cmd/mf-bridge && setpriv --reuid=nobody --regid=nogroup --clear-groups ../../bin/.bridge.test -test.run=NONE -test.bench=ListsStage -test.benchtime=300x) | grep '^Benchmark'; \
		rm -f bin/.bridge.test; \
	fi
	$(GO) test -run=NONE -bench=. -benchtime=30x -count=1 ./cmd/mf-quota/ | grep -v '^goos\|^goarch\|^pkg\|^cpu'
	$(GO) test -run=NONE -bench=. -benchtime=30x -count=1 ./cmd/mf-accept/ | grep -v '^goos\|^goarch\|^pkg\|^cpu'
	$(GO) test -run=NONE -bench=. -benchtime=1x -count=1 ./lib/state/ | grep -v '^goos\|^goarch\|^pkg\|^cpu'
	MF_STAT_BENCH=1 $(GO) test -run=NONE -bench=. -benchtime=1x -count=1 -timeout=10m ./cmd/mf-stat/ | grep -v '^goos\|^goarch\|^pkg\|^cpu'
	@sh t/bench-postfix
	@sh t/2590-bench-qmail
	@sh t/bench-scan

fuzz:
	@for p in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list='^Fuzz' $$p | grep '^Fuzz'); do \
			echo "$$p $$f"; \
			$(GO) test -run=NONE -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) $$p || exit 1; \
		done; \
	done

# Binaries and manual pages; the example configuration and lists where
# there are none yet (an edited file is never replaced); the systemd unit
# with these paths; a logrotate snippet for the decision log; bash
# completions. The unit makes /var/lib/mf and /var/log/mf itself.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(addprefix bin/,$(CMDS) $(HELPERS)) $(DESTDIR)$(BINDIR)/
	if [ -f bin/$(CLIENT) ]; then install -m 755 bin/$(CLIENT) $(DESTDIR)$(BINDIR)/; fi
	install -m 644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 man/*.7 $(DESTDIR)$(MANDIR)/man7/
	install -m 644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -d $(DESTDIR)$(SYSCONFDIR)/mf $(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(COMPDIR)
	test -e $(DESTDIR)$(SYSCONFDIR)/mf/mf.conf || install -m 644 etc/mf.conf $(DESTDIR)$(SYSCONFDIR)/mf/mf.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/mf/lists || { install -d $(DESTDIR)$(SYSCONFDIR)/mf/lists && install -m 644 etc/lists/*.list $(DESTDIR)$(SYSCONFDIR)/mf/lists/; }
	sed 's|/usr/local/bin/|$(BINDIR)/|g; s|/etc/mf/|$(SYSCONFDIR)/mf/|g' etc/mf-bridge.service >$(DESTDIR)$(UNITDIR)/mf-bridge.service
	chmod 644 $(DESTDIR)$(UNITDIR)/mf-bridge.service
	install -m 644 etc/logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/mf-bridge
	for c in $(CMDS); do echo "complete -C $(BINDIR)/$$c $$c" >$(DESTDIR)$(COMPDIR)/$$c; done

clean:
	rm -rf bin
