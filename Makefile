# The README's commands. Each target does its own set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build of torch (lies on this machine's disk); GPU users: see README.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test test-deploy demo bench-venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]" --config-settings editable_mode=compat
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

# The slow deployment tests (TFLite conversions, INT8 calibrations: about 3 min) in their own venv: the litert
# extra (+1.1 GB) cannot share one with the loggers extra (see pyproject.toml).
DEPLOY_VENV ?= .venv-deploy
$(DEPLOY_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(DEPLOY_VENV)/bin/python -m pip install -q -e ".[test-deploy]" --config-settings editable_mode=compat
	touch $@

test-deploy: $(DEPLOY_VENV)/.installed
	$(DEPLOY_VENV)/bin/python -m pytest -q -m slow_deploy

demo: install
	$(PY) -m yolov9.cli demo

# Separate venv for peer benchmarks (Ultralytics); never part of our dependencies.
BENCH_VENV ?= .venv-bench
bench-venv: $(BENCH_VENV)/.installed
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BENCH_VENV)/bin/python -m pip install -q ultralytics ultralytics-thop onnx onnxruntime onnxslim pycocotools mlxtend scikit-image tqdm
	$(BENCH_VENV)/bin/python -m pip install -q torch==2.14.1 openvino nncf litert-torch
	$(BENCH_VENV)/bin/python -m pip install -q --no-deps -e . --config-settings editable_mode=compat
	touch $@

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) $(BENCH_VENV) build *.egg-info
