"""The project's shape: one-way imports (no cycle, no script importing another), model.py on torch +
stdlib."""
import ast
import sys
from pathlib import Path

from conftest import ROOT, python, run

SCRIPTS = {"train", "sample", "eval", "bench"}


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py of the project outside tests/, config/ and the venv."""
    return {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in ROOT.rglob("*.py")
            if not {"tests", "config", ".venv", "mutants"} & set(p.relative_to(ROOT).parts)}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, lazy imports inside functions included."""
    mods = project_modules()
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            graph[m] |= {n for n in names if n in mods and n != m}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        state[m] = "done"
        stack.pop()
        return None
    return next((c for m in sorted(graph) if m not in state and (c := visit(m))), None)


def test_graph_helpers_see_what_they_should():
    """The checks below could pass by finding nothing: make sure they find a cycle and edges when there
    are."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    assert {"core", "configurator", "model"} <= graph["train"] and "data.common" in graph["core"]
    assert "data.common" in graph["data.shakespeare_char.prepare"]


def test_imports_are_acyclic_and_scripts_never_import_scripts():
    graph = import_graph()
    assert find_cycle(graph) is None, find_cycle(graph)
    prepare = {m for m in graph if m.endswith(".prepare")}
    edges = sorted(f"{a} -> {b}" for a in SCRIPTS | prepare for b in graph[a] if b in SCRIPTS | prepare)
    assert edges == []


def test_model_imports_only_torch_and_stdlib_at_module_level():
    tree = ast.parse((ROOT / "model.py").read_text(encoding="utf-8"))
    roots = {a.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for a in node.names}
    roots |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert roots - set(sys.stdlib_module_names) == {"torch"}


def test_train_is_imported_once():
    """python -X importtime train.py --help: train runs as __main__ and is never imported again as `train`."""
    r = python("-X", "importtime", "train.py", "--help", timeout=120)
    assert r.returncode == 0 and "--max_iters=" in r.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()
                if line.startswith("import time:")]
    assert "core" in imported and "model" in imported  # the listing is real
    assert "train" not in imported and "sample" not in imported and "eval" not in imported


def test_ruff_finds_nothing():
    """ruff, configured in pyproject.toml (110 columns, unused imports and names, pycodestyle), over the whole
    project, tests and config files included."""
    r = run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format=concise", "."],
            timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
