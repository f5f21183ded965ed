"""The package layout is the pipeline: no stage imports a later one, and no module imports itself in a cycle.

Every ``import`` / ``from ... import`` inside symvae (module level and inside functions alike) is read with ``ast``.
"""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "symvae"

#: The stages in pipeline order; a module may import its own stage and earlier ones only.
STAGES = ("errors", "_cache", "_lazy", "model", "derive", "codegen", "numerics", "simulate", "statics", "data", "analysis",
          "report", "check", "cli")

#: Import cycles known today, to be removed from this list when they are fixed. Any other cycle fails.
KNOWN_CYCLES: tuple[set[str], ...] = ()


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for f in ROOT.rglob("*.py"):
        if "templates" in f.parts:  # code-generation templates, not modules of the package
            continue
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    return mods


def _edges(mods) -> dict[str, set[str]]:
    edges = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                elif (node.module or "").startswith("symvae"):
                    target = node.module
                else:
                    continue
                out |= {t for t in [target] + [f"{target}.{a.name}" for a in node.names] if t in mods}
            elif isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name in mods}
        edges[name] = out - {name}
    return edges


def _stage(module: str) -> int | None:
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else None


def _cycles(edges) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_every_package_is_a_known_stage():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert packages | modules <= set(STAGES), sorted((packages | modules) - set(STAGES))


def test_no_stage_imports_a_later_one():
    edges = _edges(_modules())
    later = [(a, b) for a, outs in edges.items() for b in outs
             if _stage(a) is not None and _stage(b) is not None and _stage(b) > _stage(a)]
    assert not later, later


def test_no_import_cycles_beyond_the_known_ones():
    cycles = _cycles(_edges(_modules()))
    assert all(c in KNOWN_CYCLES for c in cycles), cycles


def test_the_graph_reader_sees_imports():
    """The reader itself: the statics solver imports codegen and derive, the CLI imports statics lazily."""
    edges = _edges(_modules())
    assert {"symvae.codegen", "symvae.derive._statics"} <= edges["symvae.statics._replica"]
    assert "symvae.statics" in edges["symvae.cli._statics"]
    assert _stage("symvae.model._model") < _stage("symvae.cli._main")  # a model -> cli edge would be "later"
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
