# cnn: plain Makefile. Options go on the command line, e.g.
#   make CC=clang            build with clang
#   make SAN=1               AddressSanitizer + UBSan build in build-san/
#   make install PREFIX=/usr/local DESTDIR=/tmp/stage
CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
PYTHON  ?= $(shell command -v -p python3 2>/dev/null || echo python3)

OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
           -Wno-format-truncation -Wno-unknown-warning-option
# -ffp-contract=off: a * b + c rounds twice with every compiler (gcc's ISO C
# default, not clang's), so the kernels that recompute a value bit for bit
# from another's formula (fused BatchNorm spans) agree under both.
BASE    := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -ffp-contract=off -Iinclude -DCNN_BUILDING_LIBRARY
LDLIBS  := -lm -lpthread

# Optional libraries: zlib (gzipped IDX files), libpng and libjpeg (image
# folders). Without them those formats report that cnn was built without.
PKG_LIBS :=
ifneq ($(shell pkg-config --exists zlib 2>/dev/null && echo y),)
BASE     += -DCNN_HAVE_ZLIB
PKG_LIBS += -lz
endif
ifneq ($(shell pkg-config --exists libpng 2>/dev/null && echo y),)
BASE     += -DCNN_HAVE_PNG $(shell pkg-config --cflags libpng)
PKG_LIBS += $(shell pkg-config --libs libpng)
endif
ifneq ($(shell pkg-config --exists libjpeg 2>/dev/null && echo y),)
BASE     += -DCNN_HAVE_JPEG
PKG_LIBS += -ljpeg
endif
LDLIBS  += $(PKG_LIBS)

BUILD   ?= build
# Quiet by default; make V=1 shows every command.
ifeq ($(V),1)
Q :=
else
Q := @
endif
ifeq ($(SAN),1)
BUILD   := build-san
CFLAGS  := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(FAULT),1)
BUILD   := build-fault
CFLAGS  += -DCNN_FAULT_INJECTION
endif

# Library sources. Reference kernels are compiled twice (float and double).
LIB_SRC := $(wildcard src/core/*.c src/io/*.c src/layers/*.c src/graph/*.c src/train/*.c src/kernels/*.c)
REF_SRC := $(wildcard src/kernels/ref/*.c)
X86_SRC := $(wildcard src/kernels/x86/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) \
           $(REF_SRC:%.c=$(BUILD)/obj/%.f32.o) $(REF_SRC:%.c=$(BUILD)/obj/%.f64.o) \
           $(X86_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_SRC := $(wildcard tools/cnn/*.c)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
LIVE_PY  := $(sort $(wildcard tests/torch/test_*_live.py))
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%) $(BUILD)/examples/header_example

LIB_A  := $(BUILD)/libcnn.a
LIB_SO := $(BUILD)/libcnn.so
TOOL   := $(BUILD)/cnn

# SIMD kernels get their ISA flags per file (chosen at run time by CPUID).
ISA_avx2   := -mavx2 -mfma
ISA_avx512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma

.PHONY: all test test-unit test-torch test-all examples clean install uninstall
all: $(LIB_A) $(LIB_SO) $(TOOL)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(BASE) $(WARN) $(CFLAGS) $(if $(findstring _avx512,$<),$(ISA_avx512),$(if $(findstring _avx2,$<),$(ISA_avx2))) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.f32.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (float)")
	$(Q)$(CC) $(BASE) $(WARN) $(CFLAGS) -DREAL=float -DSFX=f32 -MMD -MP -c $< -o $@

$(BUILD)/obj/%.f64.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (double)")
	$(Q)$(CC) $(BASE) $(WARN) $(CFLAGS) -DREAL=double -DSFX=f64 -MMD -MP -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $^

$(LIB_SO): $(LIB_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libcnn.so.$(shell sed -n 's/^#define CNN_VERSION_MAJOR //p' include/cnn.h) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(TOOL): $(TOOL_OBJ) $(LIB_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(LIB_A) $(LDLIBS)

# Unit tests link the static library and may use internal headers.
$(BUILD)/tests/%: tests/unit/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(BASE) $(WARN) $(CFLAGS) -Isrc -MMD -MP -MF $@.d $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

# Examples are built as a user would: only the public header, the static library.
$(BUILD)/examples/%: examples/%.c examples/common.h $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

# The complete example in cnn.h's manual, extracted and compiled as is.
$(BUILD)/examples/header_example.c: include/cnn.h
	@mkdir -p $(dir $@)
	$(Q)sed -n '/^ \* ---- begin example: train_small.c/,/^ \* ---- end example/p' $< \
	    | sed -e '1d' -e '$$d' -e 's/^ \* \{0,1\}//' > $@
$(BUILD)/examples/header_example: $(BUILD)/examples/header_example.c $(LIB_A)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

examples: $(EXAMPLE_BIN)

# The fast default suite: unit tests, committed PyTorch reference data, and
# the live PyTorch comparison when torch is installed.
test: all $(TEST_BIN) $(EXAMPLE_BIN)
	@BUILD=$(BUILD) PYTHON="$(PYTHON)" sh tests/run.sh $(TEST_BIN) tests/examples.sh -- $(LIVE_PY)

test-unit: all $(TEST_BIN) $(EXAMPLE_BIN)
	@BUILD=$(BUILD) PYTHON="$(PYTHON)" sh tests/run.sh $(TEST_BIN) tests/examples.sh

test-torch: all
	@BUILD=$(BUILD) PYTHON="$(PYTHON)" sh tests/run.sh -- $(LIVE_PY)

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/cnn.h $(DESTDIR)$(PREFIX)/include/cnn.h
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/libcnn.a
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/libcnn.so.$(shell sed -n 's/^#define CNN_VERSION_STRING "\(.*\)"/\1/p' include/cnn.h)
	ln -sf libcnn.so.$(shell sed -n 's/^#define CNN_VERSION_STRING "\(.*\)"/\1/p' include/cnn.h) $(DESTDIR)$(PREFIX)/lib/libcnn.so.$(shell sed -n 's/^#define CNN_VERSION_MAJOR //p' include/cnn.h)
	ln -sf libcnn.so.$(shell sed -n 's/^#define CNN_VERSION_MAJOR //p' include/cnn.h) $(DESTDIR)$(PREFIX)/lib/libcnn.so
	install -m 755 $(TOOL) $(DESTDIR)$(PREFIX)/bin/cnn
	install -d $(DESTDIR)$(PREFIX)/share/cnn/fashion-mnist-subset
	install -m 644 data/fashion-mnist-subset/* $(DESTDIR)$(PREFIX)/share/cnn/fashion-mnist-subset/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/^#define CNN_VERSION_STRING "\(.*\)"/\1/p' include/cnn.h)|g' \
	    -e 's|@LIBS_PRIVATE@|$(LDLIBS)|g' cnn.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/cnn.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/cnn.h $(DESTDIR)$(PREFIX)/lib/libcnn.* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/cnn.pc $(DESTDIR)$(PREFIX)/bin/cnn
	rm -rf $(DESTDIR)$(PREFIX)/share/cnn

clean:
	rm -rf build build-san build-fault

# Further targets (fuzzing, sanitizers, benchmarks) live in their own fragments.
include $(sort $(wildcard mk/*.mk))

-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)
