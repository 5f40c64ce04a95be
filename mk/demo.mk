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
