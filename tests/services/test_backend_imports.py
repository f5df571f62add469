"""Backend modules import in any order: no import circle through the registry."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

BACKENDS = Path(__file__).resolve().parents[2] / "addon" / "services" / "backends"
MODULES = sorted(p.stem for p in BACKENDS.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", MODULES)
def test_each_backend_module_imports_first_in_a_fresh_interpreter(module):
    code = (f"import sys; import uplift.services.backends.{module}; "
            "loaded = sorted(m for m in sys.modules if m.startswith('uplift.services.backends.')); print(loaded)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    if module == "base":  # the protocols module loads no backend
        assert done.stdout.strip() == "['uplift.services.backends.base']"


def test_the_registry_knows_every_kind_and_base_has_no_builders():
    from uplift.services.backends import base, registry

    assert set(registry.BUILDERS) == {"segment", "lift", "inpaint"}
    assert not hasattr(base, "build_segmenter")
