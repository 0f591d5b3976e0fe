"""The house rules that keep the core usable without the UI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "sgus_core"


def test_core_sources_never_import_streamlit():
    """No module under sgus_core imports streamlit (the core is pure Python)."""
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert offenders == []


def test_importing_the_core_does_not_load_streamlit():
    """Importing every core module leaves streamlit out of sys.modules."""
    modules = sorted(
        "sgus_core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in CORE.rglob("*.py")
        if "migrations" not in p.parts and p.name != "__init__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('streamlit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


REPO = CORE.parent


def test_every_markdown_file_the_code_cites_exists():
    """Each ``*.md`` file named in the code, the pages or the tests is in the repository."""
    import re

    sources = [*REPO.glob("*.py")]
    for folder in ("sgus_core", "sgus_ui", "sgus_cli", "pages", "tests", "scripts"):
        sources += [p for p in (REPO / folder).rglob("*") if p.suffix in {".py", ".sh"}]
    missing = set()
    for path in sources:
        for name in re.findall(r"(?<![\w/.-])((?:docs/)?[A-Za-z_]+\.md)\b", path.read_text()):
            if not (REPO / name).is_file():
                missing.add(f"{path.relative_to(REPO)} cites {name}")
    assert sorted(missing) == []


def test_inference_never_imports_training_or_tensorflow():
    """Loading the shipped default segmenter on ONNX Runtime and predicting a frame leaves
    training, Keras and TensorFlow unimported."""
    code = (
        "import sys, numpy as np\n"
        "from sgus_core.imaging import Frame, Rect\n"
        "from sgus_core.inference import load_model, segment_frames\n"
        "from sgus_core.settings import REPO_ROOT\n"
        "model = load_model('unet', REPO_ROOT / 'models', runtime='onnx')\n"
        "frame = Frame(np.zeros((120, 160), np.uint8), None, Rect(0, 0, 160, 120))\n"
        "segment_frames(model, [frame])\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'sgus_core.training') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_packages_say_what_they_own():
    """Every package of the core opens with a docstring that names what it owns."""
    import ast as _ast

    undocumented = [
        str(init.relative_to(REPO))
        for init in CORE.rglob("__init__.py")
        if "migrations" not in init.parts and not _ast.get_docstring(_ast.parse(init.read_text()))
    ]
    assert undocumented == []
