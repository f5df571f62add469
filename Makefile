# Uplift — every set-up step lives here, so a fresh machine needs only `make test` or `make demo`.
# Python 3.13 (Blender 5.1+); pyenv installs it off PATH, so look there too.
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) $(shell for p in python3.13; do $$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && command -v $$p; done))
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test bench bench-quality demo extension validate-extension clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $@

test: venv
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python -m bench

bench-quality: venv
	$(BIN)/python -m bench.quality

demo: venv
	$(BIN)/python scripts/demo.py --out demo-output

extension: venv
	$(BIN)/python scripts/build_extension.py --out dist

clean:
	rm -rf $(VENV) dist demo-output bench-output .pytest_cache
