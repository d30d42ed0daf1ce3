# The README's commands. Each target does its own set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build of torch (lies on this machine's disk); GPU users: see README.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test demo bench-venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

demo: install
	$(PY) -m yolov9.cli demo

# Separate venv for peer benchmarks (Ultralytics); never part of our dependencies.
BENCH_VENV ?= .venv-bench
bench-venv: $(BENCH_VENV)/.installed
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BENCH_VENV)/bin/python -m pip install -q ultralytics ultralytics-thop onnx onnxruntime onnxslim pycocotools mlxtend scikit-image tqdm
	$(BENCH_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info
