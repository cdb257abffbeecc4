# ringslot — build, test, demo, install.
#
#   make            release build: ./ringslot (-O2 -g, jemalloc)
#   make deps       install missing Debian packages (root) or say which
#   make test       deps, include-check (core/'s layers), pyflakes over
#                   test/ and bench/, build, unit tests
#                   (ASan+UBSan), snapshot stress
#                   test (TSan), fuzz corpora replayed + 10 s of fuzzing per
#                   target, integration tests against the ASan build (all on
#                   io_uring, a representative part again on epoll)
#   make fuzz       FUZZ_SECONDS=60: fuzz each libFuzzer target that long
#   make demo       3 masters + 3 replicas on loopback, ringslot on :7777
#   make asan|tsan  sanitizer builds in build/asan, build/tsan
#   make coverage   line coverage (gcov, build/coverage) of client, link,
#                   dispatch, fan-out and hold from the unit tests that run
#                   them on the fake io backend
#   make install    PREFIX=/usr/local: ringslot + redis-cluster-proxy link
#   make deb        build/ringslot_<version>-1_<arch>.deb (dpkg-deb; see
#                   deploy/debian/build-deb.sh)

PREFIX ?= /usr/local
CC ?= cc
PYTHON := /usr/bin/python3
COMMA := ,

WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes
STD := -std=gnu11 -D_GNU_SOURCE
CFLAGS ?= -O2 -g
CFLAGS += $(WARN) $(STD) -pthread -MMD -MP
LIBS := -luring -linih -lssl -lcrypto -lpthread

LIB_SRC := $(wildcard resp/*.c cluster/*.c config/*.c consensus/*.c) \
           $(filter-out core/main.c,$(wildcard core/*.c core/*/*.c))
MAIN_SRC := core/main.c
UNIT_SRC := $(wildcard test/unit/test_*.c)
UNIT_NAMES := $(patsubst test/unit/%.c,%,$(UNIT_SRC))
# Unit tests that drive a worker on the fake io backend link the harness too.
HARNESS_TESTS := test_client_link test_routing_core test_client_edges test_chaos_core
HARNESS_SRC := test/unit/harness_core.c

# The tsan build runs only what exercises threads: the snapshot/queue stress.
TSAN_TESTS := test_snapshot

DEPS_DEB := build-essential pkg-config liburing-dev libinih-dev libjemalloc-dev \
            libcmocka-dev redis-server redis-tools python3-pytest python3-redis \
            clang libclang-rt-14-dev procps gnuplot-nox \
            python3-yaml dpkg-dev lintian python3-pyflakes libssl-dev openssl \
            python3-seccomp iproute2 stunnel4

.PHONY: all release asan tsan deps test unit-test tsan-test integration-test \
        demo install clean bench fuzz fuzz-test deb py-lint coverage include-check

all: release

# --- builds -------------------------------------------------------------

define build_variant
# $(1) = name, $(2) = extra CFLAGS, $(3) = extra LIBS
build/$(1)/%.o: %.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $(2) -c $$< -o $$@

build/$(1)/ringslot: $$(patsubst %.c,build/$(1)/%.o,$$(LIB_SRC) $$(MAIN_SRC))
	$$(CC) $$(CFLAGS) $(2) -o $$@ $$^ $$(LIBS) $(3)

build/$(1)/test/unit/%: build/$(1)/test/unit/%.o $$(patsubst %.c,build/$(1)/%.o,$$(LIB_SRC))
	$$(CC) $$(CFLAGS) $(2) -o $$@ $$^ $$(LIBS) -lcmocka $(3)

$$(addprefix build/$(1)/test/unit/,$$(HARNESS_TESTS)): $$(patsubst %.c,build/$(1)/%.o,$$(HARNESS_SRC))
endef

SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -DRINGSLOT_SANITIZED
$(eval $(call build_variant,release,,-ljemalloc))
$(eval $(call build_variant,asan,$(SAN_FLAGS) -fsanitize=address$(COMMA)undefined -fno-sanitize-recover=undefined,))
$(eval $(call build_variant,tsan,$(SAN_FLAGS) -fsanitize=thread,))
# Line coverage (gcov) of the unit tests on the fake io backend.
$(eval $(call build_variant,coverage,-O0 -g --coverage,--coverage))
# The Debian package's binary: the release build plus Debian's hardening
# flags (dpkg-buildflags: fortify, stack protector, full RELRO).
DEB_FLAGS := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -ffile-prefix-map=$(CURDIR)=.
$(eval $(call build_variant,hardened,$(DEB_FLAGS),-ljemalloc -Wl$(COMMA)-z$(COMMA)relro -Wl$(COMMA)-z$(COMMA)now))


release: build/release/ringslot
	cp --remove-destination build/release/ringslot ringslot

asan: build/asan/ringslot $(addprefix build/asan/test/unit/,$(UNIT_NAMES))
tsan: $(addprefix build/tsan/test/unit/,$(TSAN_TESTS))

# --- dependencies -------------------------------------------------------

deps:
	@missing=""; for p in $(DEPS_DEB); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
	  echo "missing packages; run as root: apt-get update && apt-get install -y$$missing"; exit 1; \
	fi

# --- tests --------------------------------------------------------------

test: deps
	$(MAKE) include-check
	$(MAKE) py-lint
	$(MAKE) release
	$(MAKE) asan
	$(MAKE) unit-test
	$(MAKE) tsan-test
	$(MAKE) fuzz-test
	$(MAKE) integration-test

# core/ in layers (tls <- io <- net <- route <- cmd <- root): every #include under
# core/ points to its own folder, a lower layer's public header or a leaf
# header; each one that does not is named with file and line. The self-test
# first plants one include of each forbidden kind in a copy of core/.
include-check:
	$(PYTHON) test/include_check.py --self-test $(CURDIR)
	$(PYTHON) test/include_check.py $(CURDIR)

# The Python tests and tools: names that are undefined or unused (a test
# that cannot run fails here, not halfway through the suite).
py-lint:
	$(PYTHON) -m pyflakes test bench

unit-test: asan
	@set -e; for t in $(UNIT_NAMES); do echo "== $$t (asan)"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build/asan/test/unit/$$t; done

# The files the fake-backend unit tests are meant to cover (goal: 80% of
# their lines); `make coverage` prints each one's and their total.
COVERAGE_FILES := core/net/client.c core/net/link.c core/route/dispatch.c core/route/fanout.c \
                  core/route/hold.c

coverage: $(addprefix build/coverage/test/unit/,$(HARNESS_TESTS))
	@find build/coverage -name '*.gcda' -delete
	@set -e; for t in $(HARNESS_TESTS); do build/coverage/test/unit/$$t >/dev/null; done
	@for f in $(COVERAGE_FILES); do \
	  gcov -n -o build/coverage/$$(dirname $$f) $$f 2>/dev/null | \
	    awk -v f=$$f '/^File/ {keep = index($$0, "'"'"'" f "'"'"'") > 0} \
	      keep && /^Lines executed/ {split($$2, a, ":"); sub("%", "", a[2]); \
	        printf "%-24s %6.2f%% of %d lines\n", f, a[2], $$4; keep = 0}'; \
	done | awk '{print; n += $$4; hit += $$2 * $$4 / 100} \
	  END {printf "%-24s %6.2f%% of %d lines\n", "total", n ? 100 * hit / n : 0, n}'

tsan-test: tsan
	@set -e; for t in $(TSAN_TESTS); do echo "== $$t (tsan)"; \
	  TSAN_OPTIONS=halt_on_error=1 RINGSLOT_STRESS=1 build/tsan/test/unit/$$t; done

# The whole suite runs on io_uring; a representative part of it (routing and
# pipeline order, commands with MULTI and blocking calls, pub/sub, failover
# holds, resharding and resilience, cluster mode) runs again on epoll.
EPOLL_TESTS := test_routing.py test_commands.py test_pubsub.py test_backend_hold.py \
               test_resilience.py::test_reshard_under_load \
               test_resilience.py::test_failover_kill_master_under_load \
               test_resilience.py::test_black_holed_master \
               test_resilience.py::test_random_bytes_and_huge_commands \
               test_cluster_mode.py::test_three_proxies_agree \
               test_cluster_mode.py::test_sigterm_follower_under_load

integration-test: asan
	RINGSLOT_BIN=$(CURDIR)/build/asan/ringslot \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	$(PYTHON) -m pytest -q -x test/integration
	RINGSLOT_BIN=$(CURDIR)/build/asan/ringslot RINGSLOT_TEST_IO=epoll \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	$(PYTHON) -m pytest -q -x $(addprefix test/integration/,$(EPOLL_TESTS))

# --- fuzzing ------------------------------------------------------------
# libFuzzer targets (clang): the client request parser, the backend reply
# parser and the config reader, with their seed corpora in
# test/fuzz/corpus/<name>; test/fuzz/run.sh replays each corpus, then fuzzes.

FUZZ_CC := clang
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=undefined $(STD)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := request reply config
FUZZ_RESP := $(wildcard resp/*.c) resp/resp.h
FUZZ_CONFIG := config/config.c config/config_file.c cluster/text.c

build/fuzz/fuzz_request: test/fuzz/fuzz_request.c test/fuzz/check.h $(FUZZ_RESP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(filter %.c,$(FUZZ_RESP))

build/fuzz/fuzz_reply: test/fuzz/fuzz_reply.c test/fuzz/check.h $(FUZZ_RESP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(filter %.c,$(FUZZ_RESP))

build/fuzz/fuzz_config: test/fuzz/fuzz_config.c $(FUZZ_CONFIG) config/config.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_CONFIG) -linih

fuzz: deps $(addprefix build/fuzz/fuzz_,$(FUZZ_TARGETS))
	FUZZ_KEEP=1 test/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-test: $(addprefix build/fuzz/fuzz_,$(FUZZ_TARGETS))
	test/fuzz/run.sh 10 $(FUZZ_TARGETS)

# --- demo / install -----------------------------------------------------

demo: deps release
	$(PYTHON) test/demo.py --ringslot $(CURDIR)/ringslot --port 7777

# BENCH_ARGS: e.g. --quick (1 round, small -n) or --rounds 7; see bench/README.md
bench: deps release
	$(PYTHON) bench/run.py $(BENCH_ARGS)

install: release
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 ringslot $(DESTDIR)$(PREFIX)/bin/ringslot
	ln -sf ringslot $(DESTDIR)$(PREFIX)/bin/redis-cluster-proxy

VERSION := $(shell sed -n 's/^\#define RINGSLOT_VERSION "\(.*\)"/\1/p' core/base.h)

deb: build/hardened/ringslot
	deploy/debian/build-deb.sh build/hardened/ringslot $(VERSION)-1 build

clean:
	rm -rf build ringslot

-include $(shell find build -name '*.d' -type f 2>/dev/null)
