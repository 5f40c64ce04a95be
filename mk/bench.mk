# make bench: cnn and PyTorch side by side on every performance workload
# (bench/run.py). CNN_BENCH_QUICK=1 for a short smoke run.
BENCH_OPENBLAS := $(shell pkg-config --exists openblas 2>/dev/null && echo y)
BENCH_FLAGS :=
BENCH_LIBS :=
ifneq ($(BENCH_OPENBLAS),)
BENCH_FLAGS += -DCNN_BENCH_OPENBLAS $(shell pkg-config --cflags openblas)
BENCH_LIBS += $(shell pkg-config --libs openblas)
endif

$(BUILD)/bench/cnn_workload: bench/cnn_workload.c $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(BASE) $(WARN) $(CFLAGS) -Isrc $(BENCH_FLAGS) -o $@ $< $(LIB_A) $(LDLIBS) $(BENCH_LIBS)

.PHONY: bench
bench: all $(BUILD)/bench/cnn_workload
	@BUILD=$(BUILD) $(PYTHON) bench/run.py
