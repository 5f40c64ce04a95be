# make demo: the main job. Trains models/fashion_cnn.txt on Fashion-MNIST
# (the Debian package dataset-fashion-mnist; without it, the 2,000-image
# subset in data/ so the command still runs), prints the test accuracy after
# every epoch, saves the weights (loadable by PyTorch) and draws the curves.
# DEMO_EPOCHS=15 for the longer setting documented in the README.
DEMO_EPOCHS ?= 5
DEMO_DIR := $(BUILD)/demo

.PHONY: demo
demo: all
	@mkdir -p $(DEMO_DIR)
	$(BUILD)/cnn train models/fashion_cnn.txt --data fashion-mnist --epochs $(DEMO_EPOCHS) \
	    --batch-size 128 --optimizer adam --lr 0.002 --scheduler cosine --normalize 0.2860,0.3530 \
	    --save $(DEMO_DIR)/fashion_cnn.safetensors --metrics $(DEMO_DIR)/metrics.jsonl
	$(BUILD)/cnn plot $(DEMO_DIR)/metrics.jsonl -o $(DEMO_DIR)/curves.svg
	@echo "weights: $(DEMO_DIR)/fashion_cnn.safetensors, curves: $(DEMO_DIR)/curves.svg"

# make demo-check: the main job as CI runs it: the demo, then its final test
# accuracy (from the metrics file) must reach DEMO_MIN_ACC percent.
DEMO_MIN_ACC ?= 91
.PHONY: demo-check
demo-check: demo
	@$(PYTHON) -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])][-1]; a=100*r["test_acc"]; \
	    print("main job: test accuracy %.2f%% after %d epochs (required: %s%%)" % (a, r["epoch"], sys.argv[2])); \
	    sys.exit(0 if a >= float(sys.argv[2]) else 1)' $(DEMO_DIR)/metrics.jsonl $(DEMO_MIN_ACC)
