# duewatch build. Plain make; no configure step.
#   make              build the daemon, tools and test helpers into build/
#   make test         install missing packages, build, run unit + end-to-end tests
#   make run          install missing packages, build, run a local demo
#   make SANITIZER=address   (or undefined, or address,undefined) build with sanitizers
#                     into build-<sanitizers>/ (make test SANITIZER=... tests that build)
#   make WERROR=1     treat warnings as errors (CI)

CC       ?= cc
PKGS     ?= libevent rdkafka hiredis msgpack libcrypto
OPTIMIZE ?= -O2 -g
WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
            -Wpointer-arith -Wcast-align -Wvla
ifeq ($(WERROR),1)
WARN     += -Werror
endif
comma    := ,
ifneq ($(SANITIZER),)
BUILD    ?= build-$(subst $(comma),-,$(SANITIZER))
SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
OPTIMIZE := -O1 -g
else
BUILD    ?= build
endif
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.1.0)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# HIREDIS_SSL=1: the hiredis linked (through LIBS) is >= 1.0 with hiredis_ssl,
# so duewatchd speaks TLS to Redis (redis_tls); scripts/check-hiredis1.sh
# sets it when OpenSSL's headers are there.  Without it redis_tls is refused.
ifeq ($(HIREDIS_SSL),1)
TLS_FLAGS := -DDUEWATCH_HIREDIS_SSL=1
endif
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPTIMIZE) $(WARN) $(SANFLAGS) -Iinclude -I$(BUILD) \
             -DDUEWATCH_VERSION='"$(VERSION)"' $(TLS_FLAGS) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(SANFLAGS) $(LDFLAGS)
LIBS_ALL   = $(PKG_LIBS) -lm $(LIBS)

DAEMON_SRCS := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
DAEMON_OBJS := $(patsubst daemon/%.c,$(BUILD)/daemon/%.o,$(DAEMON_SRCS)) $(BUILD)/lua_scripts.o
LUA_SCRIPTS := $(wildcard daemon/lua/*.lua)
LUA_LIBRARY := $(wildcard daemon/lua/lib/*.lua)
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(patsubst tests/helpers/%.c,$(BUILD)/tests/%,$(HELPER_SRCS))
# Examples for consumers (README), standalone: librdkafka and msgpack-c only.
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRCS))

.PHONY: all deps test unit e2e run bench clean lint install
all: $(BUILD)/duewatchd $(BUILD)/duewatch_redis.so $(UNIT_BINS) $(HELPER_BINS) $(EXAMPLE_BINS)

deps:
	@scripts/install-deps.sh

$(BUILD)/daemon/%.o: daemon/%.c $(wildcard include/*.h daemon/*.h) | $(BUILD)/daemon
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/lua_scripts.c: $(LUA_SCRIPTS) $(LUA_LIBRARY) scripts/embed-lua.sh include/formats.h | $(BUILD)
	scripts/embed-lua.sh $(LUA_SCRIPTS) > $@

$(BUILD)/lua_scripts.o: $(BUILD)/lua_scripts.c
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libduewatch.a: $(DAEMON_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/duewatchd: $(BUILD)/daemon/main.o $(BUILD)/libduewatch.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)

# The Redis module (redis_module/duewatch_module.c), loaded by redis-server,
# not by duewatchd: built without SANFLAGS, as a sanitized shared object
# cannot load into an unsanitized redis-server.  redismodule.h is Redis's
# module API header (BSD-3-Clause), as the redis-module crate 2.0.7 ships it
# (third_party/redismodule/; Debian packages no copy of it).
MODULE_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPTIMIZE) $(WARN) -fPIC -Iinclude \
                -isystem third_party/redismodule $(CFLAGS)
$(BUILD)/duewatch_redis.so: redis_module/duewatch_module.c include/formats.h \
                            third_party/redismodule/redismodule.h | $(BUILD)
	$(CC) $(MODULE_CFLAGS) -shared $(LDFLAGS) -o $@ $<

# Unit tests link cmocka, and jansson for test_golden's JSON table.
$(BUILD)/tests/test_%: tests/unit/test_%.c $(wildcard tests/unit/*.h) $(BUILD)/libduewatch.a | $(BUILD)/tests
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libduewatch.a $(LIBS_ALL) -lcmocka -ljansson

$(BUILD)/tests/%: tests/helpers/%.c $(BUILD)/libduewatch.a | $(BUILD)/tests
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libduewatch.a $(LIBS_ALL)

$(BUILD)/examples/%: examples/%.c | $(BUILD)/examples
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIBS_ALL)

$(BUILD) $(BUILD)/daemon $(BUILD)/tests $(BUILD)/examples:
	mkdir -p $@

unit: $(UNIT_BINS)
	@scripts/run-unit-tests.sh $(UNIT_BINS)

test: deps
	@$(MAKE) --no-print-directory all
ifeq ($(SANITIZER),)
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS); \
	else echo "fuzz: SKIPPED ($(FUZZ_CC) not found)"; fi
endif
	@DUEWATCH_BUILD=$(BUILD) DUEWATCH_SANITIZER=$(SANITIZER) scripts/run-tests.sh

run: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo.sh

clean:
	rm -rf build build-*

# ---- install / uninstall
#   make install                       as root: /usr/local/bin, /etc/duewatch, ...
#   make install DESTDIR=/tmp/pkg PREFIX=/usr    staging for a package
# Installs duewatchd and the duewatch tool to $(BINDIR), the configuration to
# $(SYSCONFDIR)/duewatch (an existing file there is kept unless DESTDIR is
# set; duewatch.conf gets mode 0640 as it may hold passwords), the systemd
# unit to $(SYSTEMDUNITDIR) with ExecStart and the config path rewritten for
# BINDIR and SYSCONFDIR, a sysusers.d entry for the "duewatch" service user,
# and the man pages.  Without DESTDIR it also creates that user
# (systemd-sysusers), gives the group read access to a freshly installed
# duewatch.conf and, when systemd runs, reloads the unit files.
# `make uninstall` removes all of it but the configuration and the user.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
DATADIR        ?= $(PREFIX)/share
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= /lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
MODULEDIR      ?= $(PREFIX)/lib/duewatch
SYSUSERS       ?= systemd-sysusers
SYSTEMCTL      ?= systemctl
INSTALL        ?= install
CONFDIR         = $(SYSCONFDIR)/duewatch
TOOLDATADIR     = $(DATADIR)/duewatch
CONF_FILES     := duewatch.conf rules.conf holidays-cn.conf
MAN_PAGES      := man/duewatchd.8 man/duewatch.conf.5 man/duewatch.1
# Paths the sources spell as packaged (PREFIX=/usr, SYSCONFDIR=/etc).
INSTALL_SED     = -e 's|/usr/bin/duewatchd|$(BINDIR)/duewatchd|g' \
                  -e 's|/etc/duewatch/|$(CONFDIR)/|g' \
                  -e 's|/usr/share/duewatch/|$(TOOLDATADIR)/|g' \
                  -e 's|/usr/lib/duewatch/|$(MODULEDIR)/|g'

install: $(BUILD)/duewatchd $(BUILD)/duewatch_redis.so
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	    $(DESTDIR)$(MODULEDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -d -m 0755 $(DESTDIR)$(CONFDIR) $(DESTDIR)$(TOOLDATADIR)
	$(INSTALL) -m 0755 $(BUILD)/duewatchd $(DESTDIR)$(BINDIR)/duewatchd
	$(INSTALL) -m 0755 $(BUILD)/duewatch_redis.so $(DESTDIR)$(MODULEDIR)/duewatch_redis.so
	sed $(INSTALL_SED) scripts/duewatch > $(DESTDIR)$(BINDIR)/duewatch
	chmod 0755 $(DESTDIR)$(BINDIR)/duewatch
	$(INSTALL) -m 0755 scripts/rules-table.py $(DESTDIR)$(TOOLDATADIR)/rules-table.py
	sed $(INSTALL_SED) systemd/duewatchd.service > $(DESTDIR)$(SYSTEMDUNITDIR)/duewatchd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/duewatchd.service
	printf '# duewatchd runs as this user (see duewatchd.service)\nu duewatch - "duewatch deadline watcher" -\n' \
	    > $(DESTDIR)$(SYSUSERSDIR)/duewatch.conf
	chmod 0644 $(DESTDIR)$(SYSUSERSDIR)/duewatch.conf
	set -e; for page in $(MAN_PAGES); do \
	    target=$(DESTDIR)$(MANDIR)/man$${page##*.}/$${page#man/}; \
	    sed $(INSTALL_SED) $$page > $$target; \
	    chmod 0644 $$target; \
	done
	@if [ -z "$(DESTDIR)" ] && command -v $(SYSUSERS) >/dev/null 2>&1; then \
	    echo "$(SYSUSERS) $(SYSUSERSDIR)/duewatch.conf"; \
	    $(SYSUSERS) $(SYSUSERSDIR)/duewatch.conf; \
	fi
	@set -e; for file in $(CONF_FILES); do \
	    target=$(DESTDIR)$(CONFDIR)/$$file; \
	    mode=0644; [ $$file != duewatch.conf ] || mode=0640; \
	    if [ -z "$(DESTDIR)" ] && [ -e $$target ]; then \
	        echo "install: kept the existing $$target (the new one is conf/$$file)"; \
	        continue; \
	    fi; \
	    echo "sed conf/$$file > $$target (mode $$mode)"; \
	    sed $(INSTALL_SED) conf/$$file > $$target.new; \
	    chmod $$mode $$target.new; \
	    if [ -z "$(DESTDIR)" ] && [ $$file = duewatch.conf ] && getent group duewatch >/dev/null; then \
	        echo "chgrp duewatch $$target"; chgrp duewatch $$target.new; \
	    fi; \
	    mv -f $$target.new $$target; \
	done
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
	    echo "$(SYSTEMCTL) daemon-reload"; $(SYSTEMCTL) daemon-reload; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/duewatchd $(DESTDIR)$(BINDIR)/duewatch \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/duewatchd.service $(DESTDIR)$(SYSUSERSDIR)/duewatch.conf \
	    $(DESTDIR)$(MANDIR)/man8/duewatchd.8 $(DESTDIR)$(MANDIR)/man5/duewatch.conf.5 \
	    $(DESTDIR)$(MANDIR)/man1/duewatch.1 $(DESTDIR)$(TOOLDATADIR)/rules-table.py \
	    $(DESTDIR)$(MODULEDIR)/duewatch_redis.so
	-rmdir $(DESTDIR)$(TOOLDATADIR) $(DESTDIR)$(MODULEDIR) 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then $(SYSTEMCTL) daemon-reload; fi
	@echo "uninstall: kept $(DESTDIR)$(CONFDIR) and the duewatch user; remove them by hand if unwanted"

.PHONY: install uninstall

# ---- fuzzing (tests/fuzz/README.md) and static analysis
#   make fuzz                 build the libFuzzer targets into build-fuzz/, run each
#                             over its corpus, then fuzz each FUZZ_SECONDS (60) s
#   make fuzz FUZZ_SECONDS=0  only the corpus regression run
#   make fuzz FUZZ_TARGETS="event alert"   some of the targets
#   make lint                 cppcheck and clang-tidy (.clang-tidy) on daemon/, include/
#                             and redis_module/
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_TARGETS ?= event config rules holidays alert
FUZZ_SECONDS ?= 60
# make test runs every fuzz target this long (and its regression seeds)
TEST_FUZZ_SECONDS ?= 20
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) $(FUZZ_SAN) -Iinclude -I$(FUZZ_BUILD) \
                -DDUEWATCH_VERSION='"$(VERSION)"' -DDUEWATCH_SOURCE_DIR='"$(CURDIR)"' $(PKG_CFLAGS)
FUZZ_OBJS    := $(patsubst daemon/%.c,$(FUZZ_BUILD)/daemon/%.o,$(DAEMON_SRCS)) $(FUZZ_BUILD)/lua_scripts.o
FUZZ_BINS     = $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-build
fuzz: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD) $(FUZZ_BUILD)/daemon:
	mkdir -p $@

$(FUZZ_BUILD)/daemon/%.o: daemon/%.c $(wildcard include/*.h) | $(FUZZ_BUILD)/daemon
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/lua_scripts.c: $(LUA_SCRIPTS) $(LUA_LIBRARY) scripts/embed-lua.sh include/formats.h | $(FUZZ_BUILD)
	scripts/embed-lua.sh $(LUA_SCRIPTS) > $@

$(FUZZ_BUILD)/lua_scripts.o: $(FUZZ_BUILD)/lua_scripts.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libduewatch.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_BUILD)/libduewatch.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libduewatch.a $(LIBS_ALL)

lint:
	@scripts/lint.sh

# ---- benchmark (not a test: prints figures, judges nothing; scripts/bench_run.py)
#   make bench                      the full run (~4 minutes on 2 cores)
#   make bench BENCH_EVENTS=100000  a quick run
bench: deps
	@$(MAKE) --no-print-directory all
	@DUEWATCH_BUILD=$(BUILD) scripts/bench.sh
