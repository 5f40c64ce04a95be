# Reliability: fuzzing, sanitizers, valgrind, ThreadSanitizer, allocation
# failures and crash safety. Each target builds in its own folder:
#   make fuzz [FUZZ_SECONDS=60]   libFuzzer, every target for FUZZ_SECONDS (build-fuzz/)
#   make fuzz-smoke               every fuzz target for 10 s (what CI runs)
#   make test-san                 the whole `make test` under ASan+UBSan+LSan (build-san/)
#   make test-valgrind            training and a backward run under valgrind ($(BUILD))
#   make test-tsan                threaded tests under ThreadSanitizer (build-tsan/)
#   make test-faults              every allocation of several workflows made to fail (build-fault/)
#   make test-reliability         kill -9, Ctrl-C, resume and determinism ($(BUILD))
.PHONY: fuzz fuzz-smoke fuzz-build fuzz-bins fuzz-run test-san test-valgrind test-tsan \
        test-faults test-reliability

CLANG        ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_BUILD   := build-fuzz
FUZZ_NAMES   := model safetensors idx cifar image checkpoint options
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The library gets coverage instrumentation without libFuzzer's main.
FUZZ_CFLAGS  := -O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)
# NAME:MAXLEN: inputs past these sizes only slow the search down (a CIFAR
# record is 3073 bytes, a checkpoint of the target's model about 3500).
FUZZ_MAXLEN  := model:4096 safetensors:4096 idx:4096 cifar:16384 image:8192 checkpoint:8192 \
                options:1024

# The sanitizers write their reports to files under SAN_LOGS so that a test
# which expects a failing exit status cannot hide one; the targets fail if
# any report file exists afterwards.
SAN_LOGS_SAN   := $(CURDIR)/build-san/san-logs
SAN_LOGS_FAULT := $(CURDIR)/build-fault/san-logs
SAN_LOGS_TSAN  := $(CURDIR)/build-tsan/san-logs
san_env = ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:exitcode=86:log_path=$(1)/asan \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=86:log_path=$(1)/ubsan \
          LSAN_OPTIONS=exitcode=86
# Fails, listing the reports, if the sanitizers wrote any.
define san_check
	@if [ -n "$$(ls -A $(1) 2>/dev/null)" ]; then \
	    for f in $(1)/*; do echo "== $$f"; head -60 "$$f"; done; \
	    echo "sanitizer reports in $(1)"; exit 1; \
	else echo "no sanitizer reports"; fi
endef

# ---- fuzzing ------------------------------------------------------------------
fuzz-build:
	$(Q)$(MAKE) --no-print-directory CC=$(CLANG) BUILD=$(FUZZ_BUILD) CFLAGS="$(FUZZ_CFLAGS)" \
	    LDFLAGS="$(FUZZ_SAN)" fuzz-bins

fuzz-bins: $(FUZZ_BINS)

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CC) $(BASE) $(WARN) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< $(LIB_A) $(LDLIBS)

# fuzz-run FUZZ_TIME=S: each target replays the crashes it once found
# (tests/data/malformed/fuzz_NAME_*), then runs on its corpus for S seconds. New inputs go
# to build-fuzz/corpus/NAME (fuzz/corpus/NAME, the committed seeds, is only
# read); a crash, leak or sanitizer report is saved as build-fuzz/crash-NAME-*
# and fails the target (replay: build-fuzz/fuzz_NAME FILE). The targets set
# their own sanitizer options (fuzz/fuzz_common.h).
fuzz-run:
	@fail=0; for t in $(FUZZ_MAXLEN); do \
	    n=$${t%%:*}; len=$${t#*:}; \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	    for r in tests/data/malformed/fuzz_$${n}_*; do \
	        [ -f "$$r" ] || continue; \
	        if ! $(FUZZ_BUILD)/fuzz_$$n "$$r" > $(FUZZ_BUILD)/replay.log 2>&1; then \
	            echo "   FAIL fuzz_$$n on the regression input $$r:"; tail -30 $(FUZZ_BUILD)/replay.log; fail=1; \
	        fi; \
	    done; \
	    echo "== fuzz_$$n: $(FUZZ_TIME) s"; \
	    if ! $(FUZZ_BUILD)/fuzz_$$n $(FUZZ_BUILD)/corpus/$$n fuzz/corpus/$$n \
	        -max_total_time=$(FUZZ_TIME) -max_len=$$len -timeout=10 -rss_limit_mb=2048 \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$$n- \
	        > $(FUZZ_BUILD)/fuzz_$$n.log 2>&1; then \
	        echo "   FAIL fuzz_$$n (log: $(FUZZ_BUILD)/fuzz_$$n.log)"; tail -40 $(FUZZ_BUILD)/fuzz_$$n.log; fail=1; \
	    fi; \
	    grep -aE '^#[0-9]+[[:space:]].*cov: ' $(FUZZ_BUILD)/fuzz_$$n.log | tail -n 1 | sed 's/^/   last: /'; \
	    grep -aE 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
	        $(FUZZ_BUILD)/fuzz_$$n.log | sed 's/^/   /'; \
	done; [ $$fail -eq 0 ]

fuzz: fuzz-build
	$(Q)$(MAKE) --no-print-directory fuzz-run FUZZ_TIME=$(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	$(Q)$(MAKE) --no-print-directory fuzz-run FUZZ_TIME=$(FUZZ_SMOKE_SECONDS)

# ---- sanitizers -----------------------------------------------------------------
# The whole suite, Python live tests included (they run $(BUILD)/cnn).
test-san:
	$(Q)$(MAKE) --no-print-directory SAN=1 all
	@rm -rf $(SAN_LOGS_SAN) && mkdir -p $(SAN_LOGS_SAN)
	$(Q)$(call san_env,$(SAN_LOGS_SAN)) $(MAKE) --no-print-directory SAN=1 test
	$(call san_check,$(SAN_LOGS_SAN))

VALGRIND := valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 -q
test-valgrind: $(TOOL)
	@BUILD=$(BUILD) VALGRIND="$(VALGRIND)" sh tests/run.sh tests/reliability/valgrind.sh

# ThreadSanitizer needs clang here (and a build of its own).
TSAN_FLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
test-tsan:
	$(Q)$(MAKE) --no-print-directory CC=$(CLANG) BUILD=build-tsan CFLAGS="$(TSAN_FLAGS)" \
	    LDFLAGS="-fsanitize=thread" build-tsan/cnn build-tsan/tests/test_conv_fast \
	    build-tsan/tests/test_linear_fast build-tsan/tests/test_thread_pool build-tsan/tests/test_norm_fast \
	    build-tsan/tests/test_adapt build-tsan/tests/test_shard build-tsan/tests/test_conv_quadimg \
	    build-tsan/reliability/train_threads
	@rm -rf $(SAN_LOGS_TSAN) && mkdir -p $(SAN_LOGS_TSAN)
	@TSAN_OPTIONS="halt_on_error=1:exitcode=86:log_path=$(SAN_LOGS_TSAN)/tsan" BUILD=build-tsan \
	    sh tests/run.sh tests/reliability/tsan.sh
	$(call san_check,$(SAN_LOGS_TSAN))

# ---- allocation failures ------------------------------------------------------------
# A fault-injection build with ASan, whose leak checker runs after every
# injected failure (test_faults.c asks it to) and at exit.
test-faults:
	$(Q)$(MAKE) --no-print-directory FAULT=1 SAN=1 build-fault/tests/test_faults
	@rm -rf $(SAN_LOGS_FAULT) && mkdir -p $(SAN_LOGS_FAULT)
	@$(call san_env,$(SAN_LOGS_FAULT)) BUILD=build-fault sh tests/run.sh build-fault/tests/test_faults
	$(call san_check,$(SAN_LOGS_FAULT))

# ---- crash safety and determinism ------------------------------------------------------
$(BUILD)/reliability/%: tests/reliability/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

RELIABILITY_BIN := $(BUILD)/reliability/train_threads $(BUILD)/reliability/ck_loop \
                   $(BUILD)/reliability/test_anomaly
test-reliability: $(TOOL) $(RELIABILITY_BIN)
	@BUILD=$(BUILD) sh tests/run.sh $(BUILD)/reliability/test_anomaly $(BUILD)/reliability/train_threads \
	    tests/reliability/test_crash.py tests/reliability/test_determinism.py
