# Uplift — every set-up step lives here, so a fresh machine needs only `make test` or `make demo`.
# Python 3.13 (Blender 5.1+); pyenv installs it off PATH, so look there too.
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) $(shell python3.13 -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && command -v python3.13))
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The older Blender line the Blender tests also run on: bpy 4.2 LTS on Python 3.11.
B42    := .venv-b42
B42_STAMP := $(B42)/.installed
# The newest Blender line: bpy 5.3 (native Gaussian splats) on Python 3.13. The main .venv stays on
# the 5.2 LTS (README, "Supported Blender versions").
B53    := .venv-b53
B53_STAMP := $(B53)/.installed
# Which interpreter runs the headless-Blender tests of each line (tests/blender/blender_lines.py).
BLENDER_LINES := 5.2=$(BIN)/python,4.2=$(B42)/bin/python,5.3=$(B53)/bin/python
# `make blender-env BLENDER_PYTHON=3.13` (or 3.11, or a path to a Python or to a Blender).
BLENDER_PYTHON ?= 3.11

comma := ,

.PHONY: venv blender42 blender53 blender-env test bench bench-quality demo extension validate-extension clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $@

$(B42_STAMP): requirements-blender42.txt scripts/blender_env.py
	$(PYTHON) scripts/blender_env.py --python 3.11 --out $(B42)

blender42: $(B42_STAMP)

# Layered over .venv (same Python): only bpy 5.3 is installed, torch and the rest are shared, so the
# three lines fit a CI disk (about 11 GB in all instead of 21).
$(B53_STAMP): requirements-blender53.txt scripts/blender_env.py $(STAMP)
	$(PYTHON) scripts/blender_env.py --python 3.13 --line 5.3 --out $(B53) --share $(VENV)

blender53: $(B53_STAMP)

blender-env:
	$(PYTHON) scripts/blender_env.py --python $(BLENDER_PYTHON)

# One pytest in the main environment; the Blender tests run once per Blender line.
test: venv blender42 blender53
	UPLIFT_BLENDER_PYTHONS="$(BLENDER_LINES)" $(BIN)/python -m pytest

bench: venv
	$(BIN)/python -m bench

# BASELINE=REV[,REV...] adds that commit's own `uplift edit` as a row; HALF=tuning|heldout|all (default all).
bench-quality: venv
	$(BIN)/python -m bench.quality --half $(or $(HALF),all) $(foreach rev,$(subst $(comma), ,$(BASELINE)),--baseline $(rev))

demo: venv
	$(BIN)/python scripts/demo.py --out demo-output

extension: venv
	$(BIN)/python scripts/build_extension.py --out dist

clean:
	rm -rf $(VENV) $(B42) $(B53) dist demo-output bench-output .pytest_cache
