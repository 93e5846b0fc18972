# Quick start: `make demo` and `make test` on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= runs/demo

.PHONY: venv browser demo test bench bench-rd bench-hybrid bench-enerv bench-nvp clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build from this machine's disk (a bare `torch` pulls CUDA wheels)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/nervkit fit --sample --model nerv --params 1.5M --size 180x320 --epochs 15 -o $(DEMO_DIR)

# Debian's Chromium, for the report's browser test (tests/test_report.py); where apt cannot install it
# the test says so and the report's structure is still tested
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  timeout 600 apt-get install -y -q chromium >/dev/null 2>&1 && echo "installed chromium (the report's browser test)"; } || \
	  echo "note: chromium is not installed: the report's browser test will be skipped"

test: venv browser
	$(PY) -m pytest

bench: venv
	$(PY) benchmarks/nerv_training.py

bench-rd: venv
	$(PY) benchmarks/rd_bunny.py

# NeRV vs HNeRV vs DNeRV (regression, interpolation, inpainting, fusion ablation; ~70 min at 8 epochs); EPOCHS=300 on a GPU
EPOCHS ?= 8
bench-hybrid: venv
	$(PY) benchmarks/hybrid_bunny.py --epochs $(EPOCHS)

# E-NeRV vs NeRV: curves, convergence, 3:1 interpolation (ENERV_EPOCHS=300 --device cuda on a GPU)
ENERV_EPOCHS ?= 20
bench-enerv: venv
	$(PY) benchmarks/enerv_bunny.py --epochs $(ENERV_EPOCHS)

# NVP vs NeRV under 1/2/5/10-minute training budgets, NVP's RD curve, x4 super-resolution (~50 min)
bench-nvp: venv
	$(PY) benchmarks/nvp_bunny.py

clean:
	rm -rf $(VENV) runs
