"""The shape of the code, beyond what lint-imports checks between layers: no import cycle
among the project's modules (inside a package too; imports under TYPE_CHECKING are for
types only and do not count), and no module importing another module's _private name."""

from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SETUP = configparser.ConfigParser()
_SETUP.read(ROOT / "setup.cfg")
# The packages the project installs: a new one is checked here without being named here.
PACKAGES = tuple(sorted(p.strip().rstrip("*") for p in _SETUP["options.packages.find"]["include"].split() if p))


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _runtime_imports(tree: ast.Module) -> list[ast.ImportFrom | ast.Import]:
    """Every import statement, function-local ones included, except under `if TYPE_CHECKING:`."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skipped]


def graph() -> tuple[dict[str, set[str]], list[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    privates = []
    for module, path in mods.items():
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    target = full if full in mods else node.module
                    if target in mods and target != module:
                        edges[module].add(target)
                        if alias.name.startswith("_") and full not in mods:
                            privates.append(f"{module} imports {node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                edges[module].update(a.name for a in node.names if a.name in mods and a.name != module)
    return edges, privates


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_among_the_projects_modules():
    edges, _ = graph()
    assert len(edges) > 80
    assert cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_another_modules_private_names():
    _, privates = graph()
    assert privates == []


def test_the_readme_map_names_every_module():
    """The architecture map in README.md names each package module in its package's part."""
    block = (ROOT / "README.md").read_text().split("## Architecture", 1)[1].split("```", 2)[1]
    parts: dict[str, str] = {}
    package = None
    for line in block.splitlines():
        head = line.split("/", 1)[0]
        if line and not line.startswith(" ") and line.startswith(f"{head}/"):
            package = head
            parts[package] = ""
        elif package:
            parts[package] += line + "\n"
    missing = []
    for name, path in modules().items():
        top, _, rest = name.partition(".")
        if not rest:
            continue  # the package itself
        first = rest.split(".")[0]
        named = f"{first}/" if (ROOT / top / first).is_dir() else f"{first}.py"
        if named not in parts.get(top, ""):
            missing.append(name)
    assert missing == []


def test_every_package_has_its_place_in_the_layers_contract():
    layers = _SETUP["importlinter:contract:layers"]["layers"]
    placed = {name.strip() for line in layers.split("\n") for name in line.split("|") if name.strip()}
    roots = set(_SETUP["importlinter"]["root_packages"].split())
    assert placed == roots == set(PACKAGES)


def test_the_readme_links_every_document_and_every_link_resolves():
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", readme))
    assert linked == {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\((?!https?:|#)([^)#]+)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links {target}"
