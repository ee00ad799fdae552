# weft: build, test, bench, run.
#
#   make            build libweft.a, libweft.so and the weft command (debug)
#   make test       install missing build dependencies, run every cmocka suite
#   make test SAN=1 the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make run        the bundled scenarios in the simulator, plus seed sweeps
#   make bench      benchmarks, one "bench: <name> <value> <unit>" line each
#   make determinism  trace hashes agree across gcc/clang, -O0/-O2, sanitizers
#
# One build directory per configuration and compiler: build/<config>-<cc>.

ifeq ($(origin CC),default)
CC := gcc
endif
CONFIG ?= debug
ifeq ($(SAN),1)
CONFIG := asan
endif
CCNAME := $(notdir $(firstword $(CC)))
BUILD ?= build/$(CONFIG)-$(CCNAME)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -Iinclude -I. $(WARN) -MMD -MP
ifeq ($(CONFIG),debug)
OPT := -O0 -g
else ifeq ($(CONFIG),release)
OPT := -O2 -g -DNDEBUG
else ifeq ($(CONFIG),asan)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
SANLD := -fsanitize=address,undefined
else ifeq ($(CONFIG),coverage)
OPT := -O0 -g --coverage
SANLD := --coverage
else
$(error unknown CONFIG $(CONFIG): debug, release, asan, coverage)
endif
ALL_CFLAGS := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
ALL_LDFLAGS := $(SANLD) $(LDFLAGS)
LDLIBS_EXTRA := -lm -ldl

LIB_MODULES := core defer reactor protocols sim scenarios
LIB_SRCS := $(sort $(foreach m,$(LIB_MODULES),$(wildcard $(m)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_SUPPORT_SRCS := $(sort $(wildcard tests/support/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(BUILD)/%.o)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
BENCH_SRCS := $(sort $(wildcard bench/bench_*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
CLI_SRCS := $(sort $(wildcard cli/*.c))
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
FUZZ_TARGETS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_REPLAY_BINS := $(FUZZ_TARGETS:fuzz/%.c=$(BUILD)/fuzz/%)

WEFT := $(BUILD)/weft

.SECONDARY:
.PHONY: all lib test test-bins run bench determinism deps clean install fuzz coverage lint
all: lib $(if $(CLI_SRCS),$(WEFT))

lib: $(BUILD)/libweft.a $(BUILD)/libweft.so

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libweft.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libweft.so: $(LIB_OBJS)
	$(CC) -shared $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_EXTRA)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_SUPPORT_OBJS) $(BUILD)/libweft.a
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJS) $(BUILD)/libweft.a -lcmocka $(LDLIBS_EXTRA)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libweft.a
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libweft.a $(LDLIBS_EXTRA)

# The weft command exports the library's symbols so that plugins loaded with
# --load can call into it.
$(WEFT): $(CLI_OBJS) $(BUILD)/libweft.a
	$(CC) $(ALL_LDFLAGS) -rdynamic -o $@ $(CLI_OBJS) -Wl,--whole-archive $(BUILD)/libweft.a \
	    -Wl,--no-whole-archive $(LDLIBS_EXTRA)

# Fuzz targets built with a replay main (no libFuzzer) for the corpus tests.
$(BUILD)/fuzz/%: $(BUILD)/fuzz/%.o $(BUILD)/fuzz/replay_main.o $(BUILD)/libweft.a
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/fuzz/replay_main.o $(BUILD)/libweft.a $(LDLIBS_EXTRA)

deps:
	@scripts/deps.sh

test-bins: $(TEST_BINS) $(FUZZ_REPLAY_BINS) $(if $(CLI_SRCS),$(WEFT))

test: deps
	@scripts/lint.sh
	@$(MAKE) --no-print-directory test-bins
	@scripts/run-tests.sh $(BUILD)

run: deps
	@$(MAKE) --no-print-directory CONFIG=release $(WEFT_RELEASE_TARGET)
	@scripts/run-scenarios.sh build/release-$(CCNAME)/weft

WEFT_RELEASE_TARGET := build/release-$(CCNAME)/weft

bench: deps
	@$(MAKE) --no-print-directory CONFIG=release bench-bins
	@for b in $(BENCH_SRCS:bench/%.c=build/release-$(CCNAME)/bench/%); do $$b || exit 1; done

.PHONY: bench-bins
bench-bins: $(BENCH_BINS)

determinism: deps
	@scripts/determinism.sh

lint:
	@scripts/lint.sh

clean:
	rm -rf build

PREFIX ?= /usr/local
install: lib $(if $(CLI_SRCS),$(WEFT))
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/weft $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(BUILD)/libweft.a $(BUILD)/libweft.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/weft/*.h $(DESTDIR)$(PREFIX)/include/weft/
	sed -e 's|@PREFIX@|$(PREFIX)|g' weft.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft.pc
	$(if $(CLI_SRCS),install -m 755 $(WEFT) $(DESTDIR)$(PREFIX)/bin/)

-include $(LIB_OBJS:.o=.d) $(TEST_BINS:=.d) $(TEST_SUPPORT_OBJS:.o=.d) $(BENCH_BINS:=.d) $(CLI_OBJS:.o=.d) \
         $(FUZZ_REPLAY_BINS:=.d) $(BUILD)/fuzz/replay_main.d

# make bugs: each planted bug of scenarios/bugs/ hunted with random, PCT and
# systematic exploration, its first failure shrunk, its fixed version swept.
.PHONY: bugs
bugs: deps
	@$(MAKE) --no-print-directory CONFIG=release $(WEFT_RELEASE_TARGET)
	@scripts/bugs.sh $(WEFT_RELEASE_TARGET)

fuzz:
	@scripts/fuzz.sh

coverage:
	@scripts/coverage.sh
