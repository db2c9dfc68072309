"""The house in order: every import of an audiotrove module points to the same or a lower layer,
and dsp/ imports nothing that reads files, databases, processes or model files.

The layers, top first (README "Architecture"; DESIGN.md "The house"). A name is a top-level
package or module of src/audiotrove ("__init__" is the package itself, `audiotrove.open`).
Names on one line are one layer: they may import each other.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: list[tuple[str, ...]] = [
    ("__init__", "cli", "commands", "api", "web"),  # front doors
    ("views",),  # one function per listing or summary
    ("report",),  # the report's data and pictures (views call it; report/html.py writes the page)
    ("runner", "sources"),  # plan, executor, coordinator; fetching URL items first
    ("steps",),  # one item in, one result out
    ("maps", "mosaic"),  # layouts and re-synthesis from the stored units and vectors
    ("vectors",),  # vector shards, index, similarity; making a file's vectors
    ("units",),  # unit shards, extraction, selection, rendering, unit labels
    ("models",),  # sessions of shipped models: find, check, load, one per process
    ("catalog",),  # SQLite: files, results, fields, query language
    ("io",),  # decode, probe, atomic writes, remux, fetch
    ("dsp",),  # pure numpy/scipy: arrays in, numbers out
    ("errors",),  # the error classes every layer raises
]

# dsp/ is arrays in, numbers out: none of these (files, databases, processes, model files and
# runtimes; models/ loads networks and hands them in).
NOT_IN_DSP = ("os", "pathlib", "shutil", "tempfile", "glob", "soundfile", "av", "pyarrow", "duckdb",
              "sqlite3", "subprocess", "multiprocessing", "concurrent", "importlib", "onnxruntime",
              "onnx", "pyrnnoise", "ctranslate2", "faster_whisper")


@dataclass(frozen=True)
class Violation:
    path: str  # relative to the source root
    line: int
    importer: str  # layer name of the importing module
    imported: str  # layer name of the imported module
    target: str  # the imported module

    def __str__(self) -> str:
        return (f"{self.path}:{self.line}: {self.importer} imports {self.target}, "
                f"from the higher layer {self.imported}")


def layer_ranks(layers: list[tuple[str, ...]]) -> dict[str, int]:
    """{name: rank}, the bottom layer 0."""
    return {name: len(layers) - 1 - i for i, row in enumerate(layers) for name in row}


def _module_name(path: Path, src: Path) -> tuple[str, str]:
    """(dotted module, the package relative imports start from)."""
    parts = path.relative_to(src).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), ".".join(parts[:-1])
    return ".".join(parts), ".".join(parts[:-1])


def imported_modules(tree: ast.AST, package: str, root: str) -> list[tuple[int, str]]:
    """(line, dotted module) of every import of the `root` package anywhere in `tree`: module
    level, in functions and classes, under `if TYPE_CHECKING`, and importlib.import_module
    calls with a literal name. `from X import a` gives X.a (a may be a module)."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out += [(node.lineno, f"{module}.{a.name}") for a in node.names if a.name != "*"]
            if any(a.name == "*" for a in node.names):
                out.append((node.lineno, module))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            out.append((node.lineno, node.args[0].value))
    return [(line, m) for line, m in out if m == root or m.startswith(root + ".")]


def check_layers(src: Path, root: str = "audiotrove",
                 layers: list[tuple[str, ...]] = LAYERS) -> tuple[list[Violation], list[str]]:
    """(imports pointing up, names under src/root that no layer holds)."""
    ranks = layer_ranks(layers)
    top = src / root
    names = {p.stem if p.is_file() else p.name for p in top.iterdir()
             if (p.is_file() and p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").exists())
             or (p.is_dir() and any(p.glob("*.py")))}
    unplaced = sorted(n for n in names if n not in ranks)

    def layer_of(dotted: str) -> str:
        parts = dotted.split(".")
        return parts[1] if len(parts) > 1 and parts[1] in names else "__init__"

    violations = []
    for path in sorted(top.rglob("*.py")):
        module, package = _module_name(path, src)
        here = layer_of(module)
        for line, target in imported_modules(ast.parse(path.read_text(), str(path)), package, root):
            there = layer_of(target)
            if here in ranks and there in ranks and ranks[there] > ranks[here]:
                violations.append(Violation(str(path.relative_to(src)), line, here, there, target))
    return violations, unplaced


def dsp_imports(src: Path, root: str = "audiotrove", banned: tuple[str, ...] = NOT_IN_DSP) -> list[str]:
    """'path:line: module' for each import of a banned library in src/root/dsp."""
    out = []
    for path in sorted((src / root / "dsp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            out += [f"{path.relative_to(src)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in banned]
    return out


def test_imports_only_point_down():
    violations, unplaced = check_layers(SRC)
    assert not unplaced, f"place these in LAYERS (tests/test_layers.py): {unplaced}"
    assert not violations, "imports pointing up:\n" + "\n".join(map(str, violations))


def test_dsp_knows_nothing_of_files_processes_or_models():
    found = dsp_imports(SRC)
    assert not found, "dsp/ imports what belongs to io/, runner/ or models/:\n" + "\n".join(found)


def test_the_layer_table_names_each_package_once():
    names = [n for row in LAYERS for n in row]
    assert len(names) == len(set(names))
    for name in names:
        assert name == "__init__" or (SRC / "audiotrove" / name).is_dir() or \
            (SRC / "audiotrove" / f"{name}.py").is_file(), f"LAYERS names {name}, which does not exist"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "src"
    for rel, text in files.items():
        path = src / "audiotrove" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_a_planted_upward_import_is_reported(tmp_path):
    src = _tree(tmp_path, {
        "__init__.py": "from .api import open\n",
        "api.py": "from .steps.embed import run\n",
        "errors.py": "",
        "dsp/__init__.py": "",
        "dsp/pure.py": "import numpy as np\nfrom ..errors import x\n",
        "dsp/vad.py": "import numpy as np\n\n\ndef session():\n    import onnxruntime.capi as ort\n",
        "io/__init__.py": "",
        "io/decode.py": "from ..dsp.pure import y\n",
        "steps/__init__.py": "",
        "steps/embed.py": "from ..io.decode import open_audio\nfrom . import base\n",
        "units/__init__.py": "",
        "units/select.py": ("from ..io import decode\n\n\n"
                            "def list_units():\n"
                            "    if True:\n"
                            "        from ..steps.embed import run  # planted: units -> steps\n"),
        "vectors/__init__.py": "",
        "vectors/search.py": "import importlib\nm = importlib.import_module('audiotrove.maps.store')\n",
        "maps/__init__.py": "",
        "maps/store.py": "from audiotrove import api\nfrom .. import open\n",
    })
    layers = [("__init__", "api"), ("steps",), ("maps",), ("vectors",), ("units",), ("io",), ("dsp",), ("errors",)]
    violations, unplaced = check_layers(src, layers=layers)
    assert unplaced == []
    found = {(v.path, v.line, v.importer, v.imported) for v in violations}
    assert found == {
        ("audiotrove/units/select.py", 6, "units", "steps"),
        ("audiotrove/vectors/search.py", 2, "vectors", "maps"),
        ("audiotrove/maps/store.py", 1, "maps", "api"),
        ("audiotrove/maps/store.py", 2, "maps", "__init__"),  # audiotrove.open: the package itself
    }
    message = str(next(v for v in violations if v.importer == "units"))
    assert message == ("audiotrove/units/select.py:6: units imports audiotrove.steps.embed.run, "
                       "from the higher layer steps")
    assert dsp_imports(src) == ["audiotrove/dsp/vad.py:5: onnxruntime.capi"]
    # a package no layer holds is reported too
    _, unplaced = check_layers(src, layers=[row for row in layers if row != ("maps",)])
    assert unplaced == ["maps"]


@pytest.mark.parametrize("text, target", [
    ("from .. import errors", "audiotrove.errors"),
    ("from ..io.decode import open_audio as oa", "audiotrove.io.decode.open_audio"),
    ("import audiotrove.dsp.vad", "audiotrove.dsp.vad"),
    ("def f():\n    from . import store", "audiotrove.units.store"),
])
def test_imports_are_resolved(text, target):
    tree = ast.parse(text)
    assert imported_modules(tree, "audiotrove.units", "audiotrove") == [(text.count("\n") + 1, target)]
