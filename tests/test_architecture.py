"""The import rules of docs/architecture.md, checked from the code with `ast`.

A newcomer opens one wing of `tracecli/` and knows what it may touch: a wing imports only
wings of a lower layer (LAYERS below, the same table as in docs/architecture.md), no two
modules import each other even through others, only `tracecli/cli/` imports typer and rich,
and imports sit at the top of a module, so the graph drawn here is the one Python follows
(an import inside a function would hide a cycle). Pure reading of files: no tracecli module
is imported.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "tracecli"
DOC = ROOT / "docs" / "architecture.md"

# wing → layer. A wing may import the wings of strictly lower layers, never one of its own
# layer or above. "tracecli" is the base: the package itself and the modules of
# test_every_module_is_in_a_wing_of_the_table.
LAYERS: dict[str, int] = {
    "tracecli": 0,
    "config": 1,
    "inputs": 1,
    "schema": 1,
    "store": 1,
    "check": 2,
    "wire": 2,
    "freeplay": 3,
    "otel": 3,
    "targets": 4,
    "readback": 5,
    "serve": 5,
    "journal": 5,
    "upload": 6,
    "cli": 7,
}

# Imports inside a function, outside cli/, each with its reason. One of tracecli's own
# modules only for start-up time, and only downward or within a wing: the layer and cycle
# checks count it like any other import, so it hides nothing from them.
LATE_IMPORTS: dict[tuple[str, str], str] = {
    # validate of a small Weave file needs none of these: the Freeplay schema (~70 models),
    # the OpenTelemetry mapping and PyYAML cost more to import than the run takes
    ("tracecli.check.records", "tracecli.schema.freeplay"): "start-up time",
    ("tracecli.upload.validate", "tracecli.otel.calls"): "start-up time",
    ("tracecli.upload.validate", "tracecli.upload.otlp_map"): "start-up time",
    ("tracecli.upload.validate", "tracecli.upload.otlp_blocks"): "start-up time",
    ("tracecli.inputs.reader", "tracecli.inputs.yaml_records"): "start-up time",
    # nor pydantic: the call models and pydantic's own reading of an odd time are for the
    # records the fast path does not vouch for, a secret only for commands that read one
    ("tracecli.check.records", "tracecli.schema.weave"): "start-up time",
    ("tracecli.check.records", "pydantic"): "start-up time",
    ("tracecli.check.facts", "pydantic"): "start-up time",
    # upload to Weave or the store never needs the Freeplay pipeline (schema, mapping)
    ("tracecli.upload.api", "tracecli.upload.freeplay"): "start-up time",
    # upload to a server needs no store and to the store no HTTP client; a JSONL upload
    # needs no OpenTelemetry mapping (imported when an OTLP file is among the inputs)
    ("tracecli.upload.api", "tracecli.targets.weave"): "start-up time",
    ("tracecli.upload.api", "tracecli.targets.local"): "start-up time",
    ("tracecli.upload.run", "tracecli.upload.otlp"): "start-up time",
    ("tracecli.targets.outcome", "httpx"): "start-up time",
    # nor ssl, socket and email's date parsing: a client to a server imports them anyway,
    # an upload to the store or a dry run (which import the targets' outcomes) never
    ("tracecli.targets.retry", "email.utils"): "start-up time",
    ("tracecli.targets.retry", "socket"): "start-up time",
    ("tracecli.targets.retry", "ssl"): "start-up time",
    ("tracecli.targets.endpoint", "ssl"): "start-up time",
    ("tracecli.targets.endpoint", "socket"): "start-up time",
    # `tail --help` and `--help` import the table's widths, not its JSON reading
    ("tracecli.readback.rows", "orjson"): "start-up time",
    # pydantic's lax time and int readers, for the odd time or count: an upload to the store
    # of ISO times and integer counts never needs pydantic (a third of its start-up)
    ("tracecli.store.rows", "pydantic"): "start-up time",
    ("tracecli.store.summary_ints", "pydantic"): "start-up time",
    # `tail` of the store opens no HTTP client: the server's source imports it when made
    ("tracecli.readback.sources", "tracecli.targets.transport"): "start-up time",
    ("tracecli.readback.sources", "httpx"): "start-up time",
    ("tracecli.targets.retry", "httpx"): "start-up time",
    # PyYAML for the config files, only when there is one (most runs find none)
    ("tracecli.config.files", "yaml"): "start-up time",
    # the forked pool costs ~13 ms to import: validate and upload of a small file skip it
    ("tracecli.inputs.workers", "concurrent.futures"): "start-up time",
    ("tracecli.inputs.workers", "concurrent.futures.process"): "start-up time",
    ("tracecli.inputs.workers", "multiprocessing"): "start-up time",
    ("tracecli.inputs.workers", "ctypes"): "start-up time",
    ("tracecli.inputs.workers", "fcntl"): "start-up time",
    # file events for upload --follow: optional, the follow polls when it cannot be imported
    ("tracecli.inputs.watch", "watchfiles"): "optional dependency",
    # uvicorn is only needed once `tracecli serve` listens (tests build the app without it)
    ("tracecli.serve.listen", "uvicorn"): "start-up time",
}

CLI_ONLY = {"typer", "rich", "click"}


@dataclass(frozen=True, slots=True)
class Import:
    importer: str  # dotted module name
    target: str  # dotted module imported (a tracecli module, or a third-party top name)
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(module: str, name: str) -> str:
    """`from module import name`: the module imported (name itself when it is a module)."""
    sub = f"{module}.{name}"
    return sub if sub in MODULES else module


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

    def walk(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for a in child.names:
                    yield Import(module, a.name, child.lineno, in_function)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module.startswith("tracecli"):
                    for a in child.names:
                        yield Import(
                            module, _resolve(child.module, a.name), child.lineno, in_function
                        )
                else:
                    yield Import(module, child.module, child.lineno, in_function)
            elif isinstance(child, ast.ImportFrom):
                raise AssertionError(f"{path}:{child.lineno}: relative import; write it whole")
            yield from walk(child, inside)

    yield from walk(tree, False)


IMPORTS: list[Import] = [i for m, p in MODULES.items() for i in _imports(m, p)]


def wing(module: str) -> str:
    """The wing a tracecli module lives in; `python -m tracecli` is the CLI's."""
    if module == "tracecli.__main__":
        return "cli"
    parts = module.split(".")
    if len(parts) > 1 and (PKG / parts[1]).is_dir():
        return parts[1]
    return "tracecli"


def _own(i: Import) -> bool:
    return i.target == "tracecli" or i.target.startswith("tracecli.")


def test_every_module_is_in_a_wing_of_the_table() -> None:
    assert {wing(m) for m in MODULES} == set(LAYERS)
    root = sorted(m for m in MODULES if wing(m) == "tracecli")
    # the base: what wings share (sqlite_wal: config's private files and the store;
    # weave_usage: the schema's fast path, the store and the span mapping; replace_file:
    # the outputs of config, journal and cli)
    assert root == [
        "tracecli",
        "tracecli.diagnostics",
        "tracecli.packing",
        "tracecli.replace_file",
        "tracecli.sqlite_wal",
        "tracecli.weave_usage",
    ], "a new module belongs in a wing"


def test_each_wing_says_what_it_is_in_one_line() -> None:
    for w in LAYERS:
        if w == "tracecli":
            continue
        doc = ast.get_docstring(ast.parse((PKG / w / "__init__.py").read_text()))
        assert doc, f"tracecli/{w}/__init__.py has no docstring"
        first, *rest = doc.split("\n")
        assert first.endswith(".") and (not rest or rest[0] == ""), f"tracecli/{w}: one line first"


def test_no_wing_imports_upward_or_sideways() -> None:
    bad = [
        f"{i.importer} (line {i.line}, {wing(i.importer)}: layer {LAYERS[wing(i.importer)]}) "
        f"imports {i.target} ({wing(i.target)}: layer {LAYERS[wing(i.target)]})"
        for i in IMPORTS
        if _own(i)
        and wing(i.importer) != wing(i.target)
        and LAYERS[wing(i.target)] >= LAYERS[wing(i.importer)]
    ]
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, edges = work[-1]
            for w in edges:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    group = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        group.append(w)
                        if w == v:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules() -> None:
    # every import counts: type-only ones and those inside functions too
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in IMPORTS:
        if _own(i) and i.target in MODULES and i.target != i.importer:
            graph[i.importer].add(i.target)
    assert _cycles(graph) == []


def test_only_the_cli_imports_typer_and_rich() -> None:
    bad = [
        f"{i.importer} (line {i.line}) imports {i.target}"
        for i in IMPORTS
        if i.target.split(".")[0] in CLI_ONLY and wing(i.importer) != "cli"
    ]
    assert bad == []


def test_imports_sit_at_the_top_of_modules_outside_the_cli() -> None:
    late = {
        (i.importer, i.target): i.line
        for i in IMPORTS
        if i.in_function and wing(i.importer) != "cli"
    }
    own = [
        f"{m} (line {n}) imports {t} inside a function"
        for (m, t), n in late.items()
        if t.startswith("tracecli") and LATE_IMPORTS.get((m, t)) != "start-up time"
    ]
    assert own == [], "an import of tracecli inside a function hides a cycle"
    assert sorted(late) == sorted(LATE_IMPORTS), "a late import needs a reason in LATE_IMPORTS"


def _doc_layers() -> dict[str, int]:
    """The wing table of docs/architecture.md: rows `| `wing/` | layer | … |`."""
    rows = re.findall(r"^\|\s*`(\w+)/?`\s*\|\s*(\d+)\s*\|", DOC.read_text(), flags=re.M)
    return {name: int(layer) for name, layer in rows}


def test_the_architecture_doc_gives_the_same_layers() -> None:
    if not DOC.exists():
        pytest.fail("docs/architecture.md is missing")
    assert _doc_layers() == LAYERS


def _doc_graph() -> dict[str, set[str]]:
    """The `wing/ → wing/ …` lines of docs/architecture.md's diagram."""
    rows = re.findall(r"^(\w+)/\s+→([^\n]*)$", DOC.read_text(), flags=re.M)
    return {w: {t.rstrip("/") for t in targets.split()} for w, targets in rows}


def test_the_architecture_doc_draws_who_imports_whom() -> None:
    code: dict[str, set[str]] = {w: set() for w in LAYERS if w != "tracecli"}
    for i in IMPORTS:
        a, b = wing(i.importer), wing(i.target) if _own(i) else ""
        if b and a != b and b != "tracecli":
            code[a].add(b)
    assert _doc_graph() == code


def test_one_module_opens_http_clients() -> None:
    """Every request (upload, tail, export, login) goes through targets/transport.py's
    `http_client`: one place for TLS (--ca-bundle), the plain-http refusal and redaction."""
    opens = re.compile(r"\bhttpx\.(Client|AsyncClient|get|post|put|stream|request)\(")
    bad = [
        f"{name} (line {n}) opens its own HTTP client"
        for name, path in MODULES.items()
        if name != "tracecli.targets.transport"
        for n, text in enumerate(path.read_text().splitlines(), 1)
        if opens.search(text)
    ]
    assert bad == []


def test_test_modules_share_helpers_through_tests_support() -> None:
    """A test module imports what it shares with others from `tests/support/`, never from
    another test module: importing a test module runs its module-level setup and re-collects
    nothing, and a helper hidden in one module's tests is found only by reading them all."""
    tests = ROOT / "tests"
    bad = []
    for path in sorted(tests.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            bad += [
                f"{path.name} line {node.lineno} imports {n}"
                for n in names
                if n.startswith("tests.test_") or n.startswith("test_")
            ]
    assert bad == []
