"""The package's shape (docs/architecture.md): few modules at the top, and imports that point one
way, read from the source (every import, also those inside functions)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vimae"

# Each part of the package and the parts it may import (besides itself). A part is a folder
# under src/vimae or a module at the top; the layers of docs/architecture.md.
BASE = {"errors", "registry", "files", "config", "distributed"}
ALLOWED = {
    **{name: BASE for name in BASE},
    "models": BASE,
    "data": BASE,
    "metrics": BASE | {"models", "data"},
    "plotting": BASE,
    "runs": BASE | {"models", "data", "metrics"},
    "api": BASE | {"models", "data", "metrics", "runs"},
    "sklearn": BASE | {"models", "data", "metrics", "runs", "api"},
    "paper": BASE | {"models", "data", "metrics", "runs", "plotting"},
    "commands": BASE | {"models", "data", "metrics", "runs", "plotting", "paper"},
    "cli": BASE | {"commands", "runs"},
    "__init__": BASE,
    "__main__": {"cli"},
}


def part_of(module: str) -> str:
    """The part a dotted module name belongs to: vimae.models.prior -> models."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported_names(text: str) -> list[str]:
    """Every vimae module a source text imports, at the top or inside functions, also by
    importlib.import_module("vimae....")."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append(str(node.args[0].value))
    return [name for name in found if name.startswith("vimae.")]


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(relative.parts)


def violations(sources: dict[str, str] | None = None) -> list[str]:
    """Every import that points the wrong way, as "importer -> imported". `sources` (module
    name -> text) replaces reading the package, for the test that proves this can fail."""
    if sources is None:
        sources = {module_name(p): p.read_text() for p in PACKAGE.rglob("*.py")}
    found = []
    for importer, text in sources.items():
        source = part_of(importer)
        for name in imported_names(text):
            target = part_of(name)
            if target != source and target not in ALLOWED.get(source, set()):
                found.append(f"{importer} -> {name}")
    return found


def test_at_most_eight_modules_stand_at_the_top():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= 8, top
    every_part = set(top) | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert every_part <= set(ALLOWED), f"a part without a place in the layers: {every_part}"


def test_imports_point_one_way():
    assert violations() == []


@pytest.mark.parametrize(
    "importer, text",
    [
        ("vimae.models.autoencoder", "from vimae.paper.report import build_report\n"),
        ("vimae.api", "def load():\n    from vimae.commands.common import load_trained\n"),
        ("vimae.metrics.rate", "import vimae.runs.fit\n"),
        ("vimae.data.folder", "from vimae.models import build_model\n"),
        ("vimae.models.prior", "import importlib\nimportlib.import_module('vimae.data.base')\n"),
        ("vimae.runs.fit", "from vimae.paper import numbers\n"),
    ],
)
def test_the_direction_check_catches_a_wrong_import(importer, text):
    assert violations({importer: text}) != []
