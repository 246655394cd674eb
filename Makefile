# duewatch build. Plain make; no configure step.
#   make              build the daemon, tools and test helpers into build/
#   make test         install missing packages, build, run unit + end-to-end tests
#   make run          install missing packages, build, run a local demo
#   make SANITIZER=address   (or undefined, or address,undefined) build with sanitizers
#                     into build-<sanitizers>/ (make test SANITIZER=... tests that build)
#   make WERROR=1     treat warnings as errors (CI)

CC       ?= cc
PKGS     := libevent rdkafka hiredis msgpack
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
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPTIMIZE) $(WARN) $(SANFLAGS) -Iinclude -I$(BUILD) \
             -DDUEWATCH_VERSION='"$(VERSION)"' $(PKG_CFLAGS) $(CFLAGS)
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

.PHONY: all deps test unit e2e run bench clean lint install
all: $(BUILD)/duewatchd $(UNIT_BINS) $(HELPER_BINS)

deps:
	@scripts/install-deps.sh

$(BUILD)/daemon/%.o: daemon/%.c $(wildcard include/*.h) | $(BUILD)/daemon
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/lua_scripts.c: $(LUA_SCRIPTS) $(LUA_LIBRARY) scripts/embed-lua.sh | $(BUILD)
	scripts/embed-lua.sh $(LUA_SCRIPTS) > $@

$(BUILD)/lua_scripts.o: $(BUILD)/lua_scripts.c
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libduewatch.a: $(DAEMON_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/duewatchd: $(BUILD)/daemon/main.o $(BUILD)/libduewatch.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libduewatch.a | $(BUILD)/tests
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libduewatch.a $(LIBS_ALL) -lcmocka

$(BUILD)/tests/%: tests/helpers/%.c $(BUILD)/libduewatch.a | $(BUILD)/tests
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(BUILD)/libduewatch.a $(LIBS_ALL)

$(BUILD) $(BUILD)/daemon $(BUILD)/tests:
	mkdir -p $@

unit: $(UNIT_BINS)
	@scripts/run-unit-tests.sh $(UNIT_BINS)

test: deps
	@$(MAKE) --no-print-directory all
	@DUEWATCH_BUILD=$(BUILD) scripts/run-tests.sh

run: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo.sh

clean:
	rm -rf build build-*
