"""Meta-tests: every hook is documented, with its exact signature, and tested.

Adding a hookspec to donjon.core.hookspecs without a section in
docs/plugins.md (heading, signature, contract) or without a
`test_hook_<name>` in tests/core/test_hooks.py fails here. The checks are
plain functions so that the last tests can show they catch such a hook.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pluggy
import pytest

from donjon.core import hookspecs
from donjon.core.plugins import PROJECT, DonjonPluginManager

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"
HOOK_TESTS = ROOT / "tests" / "core" / "test_hooks.py"
HEADING = re.compile(r"^### `(?P<name>\w+)`(?P<firstresult> \(firstresult\))?$", re.MULTILINE)

Hooks = dict[str, Callable[..., Any]]


def hookspecs_of(namespace: object) -> Hooks:
    """The functions of `namespace` marked with donjon's hookspec, in declaration order."""
    return {
        name: fn
        for name, fn in vars(namespace).items()
        if inspect.isfunction(fn) and hasattr(fn, f"{PROJECT}_spec")
    }


def signature_line(name: str, fn: Callable[..., Any]) -> str:
    """`def name(arg: type, ...) -> type`, as the hookspec is written in the source."""

    def text(annotation: Any) -> str:
        # Annotations are strings (postponed evaluation): show them as written.
        return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)

    signature = inspect.signature(fn)
    params = []
    for p in signature.parameters.values():
        part = p.name
        if p.annotation is not p.empty:
            part += f": {text(p.annotation)}"
        if p.default is not p.empty:
            part += f" = {p.default!r}"
        params.append(part)
    returns = (
        ""
        if signature.return_annotation is signature.empty
        else f" -> {text(signature.return_annotation)}"
    )
    return f"def {name}({', '.join(params)}){returns}"


def doc_sections(docs: str) -> dict[str, str]:
    """Each `### `hook`` section of the docs: heading line to the next heading."""
    starts = list(HEADING.finditer(docs))
    return {
        m.group("name"): docs[m.start() : nxt.start() if nxt else len(docs)]
        for m, nxt in zip(starts, [*starts[1:], None], strict=True)
    }


def squeeze(text: str) -> str:
    return " ".join(text.split())


def documentation_problems(hooks: Hooks, docs: str) -> list[str]:
    """What docs/plugins.md lacks or gets wrong about `hooks`; empty when all is well."""
    sections = doc_sections(docs)
    problems = [
        f"{name}: documented, but there is no such hook" for name in sections if name not in hooks
    ]
    for name, fn in hooks.items():
        section = sections.get(name)
        if section is None:
            problems.append(f"{name}: no '### `{name}`' section")
            continue
        code_lines = {line.strip() for line in section.splitlines()}
        if signature_line(name, fn) not in code_lines:
            problems.append(
                f"{name}: the section lacks the exact signature line {signature_line(name, fn)!r}"
            )
        firstresult = bool(fn.donjon_spec["firstresult"])  # type: ignore[attr-defined]
        if firstresult != bool(HEADING.search(section).group("firstresult")):  # type: ignore[union-attr]
            problems.append(f"{name}: the heading must say (firstresult) exactly when the hook is")
        if squeeze(inspect.getdoc(fn) or "") not in squeeze(section):
            problems.append(f"{name}: the section does not carry the hookspec's docstring")
        if "Example:" not in section:
            problems.append(f"{name}: the section has no example")
    return problems


def contract_problems(hooks: Hooks) -> list[str]:
    """Hooks whose docstring does not say when, with what and returning what."""
    problems = []
    for name, fn in hooks.items():
        doc = inspect.getdoc(fn) or ""
        if not re.search(r"^Called (once |for |when |after |by )", doc, re.MULTILINE):
            problems.append(f"{name}: no paragraph starting 'Called ...' says when it is called")
        params = list(inspect.signature(fn).parameters)
        documented = re.findall(r"^:param (\w+):", doc, re.MULTILINE)
        if documented != params:
            problems.append(
                f"{name}: :param lines {documented} do not match the parameters {params}"
            )
        if not re.search(r"^:return: \S", doc, re.MULTILINE):
            problems.append(f"{name}: no ':return:' line states the return contract")
        if fn.donjon_spec["firstresult"] and "firstresult" not in doc:  # type: ignore[attr-defined]
            problems.append(f"{name}: a firstresult hook whose docstring does not say so")
    return problems


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def coverage_problems(hooks: Hooks, names: set[str]) -> list[str]:
    """Hooks with no `test_hook_<name>`, and such tests for hooks that do not exist."""
    problems = [
        f"{name}: no test_hook_{name} in {HOOK_TESTS.name}"
        for name in hooks
        if f"test_hook_{name}" not in names
    ]
    problems += [
        f"{test}: tests a hook that does not exist"
        for test in sorted(names)
        if test.startswith("test_hook_") and test.removeprefix("test_hook_") not in hooks
    ]
    return problems


HOOKS = hookspecs_of(hookspecs)


# -- the meta-tests ----------------------------------------------------------------------


def test_the_hookspec_module_declares_every_hook_of_the_plugin_manager() -> None:
    declared = {name for name in vars(DonjonPluginManager().hook) if not name.startswith("_")}
    assert set(HOOKS) == declared
    assert len(HOOKS) >= 10


def test_every_hook_is_documented_with_its_exact_signature_contract_and_example() -> None:
    assert documentation_problems(HOOKS, DOCS.read_text()) == []


def test_every_hookspec_docstring_says_when_it_is_called_its_arguments_and_return() -> None:
    assert contract_problems(HOOKS) == []


def test_every_hook_has_a_test_named_after_it() -> None:
    assert coverage_problems(HOOKS, defined_tests(HOOK_TESTS)) == []


# -- the checks catch a new hook -----------------------------------------------------------


hookspec = pluggy.HookspecMarker(PROJECT)


def _new_hooks() -> Hooks:
    """The real hooks plus one nobody documented or tested."""

    @hookspec(firstresult=True)
    def verify_widget(widget: str, runtime: Any) -> bool | None:
        """Check a widget.

        Called for every widget. firstresult.

        :param widget: the widget.
        :param runtime: the runtime.
        :return: True or False, or None.
        """

    return {**HOOKS, "verify_widget": verify_widget}


def test_the_checks_catch_an_undocumented_untested_hook() -> None:
    hooks = _new_hooks()

    assert documentation_problems(hooks, DOCS.read_text()) == [
        "verify_widget: no '### `verify_widget`' section"
    ]
    assert coverage_problems(hooks, defined_tests(HOOK_TESTS)) == [
        f"verify_widget: no test_hook_verify_widget in {HOOK_TESTS.name}"
    ]


def test_the_checks_catch_a_wrong_signature_a_thin_docstring_and_a_stale_test() -> None:
    name = "resolve_instance"
    docs = DOCS.read_text()
    wrong = docs.replace(
        signature_line(name, HOOKS[name]), "def resolve_instance(host: str) -> str | None"
    )

    @hookspec
    def on_startup(runtime: Any, app: Any) -> None:
        """Observe the start."""

    assert documentation_problems(HOOKS, wrong) == [
        f"{name}: the section lacks the exact signature line {signature_line(name, HOOKS[name])!r}"
    ]
    assert contract_problems({"on_startup": on_startup}) == [
        "on_startup: no paragraph starting 'Called ...' says when it is called",
        "on_startup: :param lines [] do not match the parameters ['runtime', 'app']",
        "on_startup: no ':return:' line states the return contract",
    ]
    stale = {*defined_tests(HOOK_TESTS), "test_hook_on_reboot"}
    assert coverage_problems(HOOKS, stale) == [
        "test_hook_on_reboot: tests a hook that does not exist"
    ]


@pytest.mark.parametrize("name", list(HOOKS))
def test_signature_line_reads_like_the_source(name: str) -> None:
    source = inspect.getsource(HOOKS[name])
    flat = squeeze(source[source.index("def ") : source.index(":\n")])
    assert squeeze(signature_line(name, HOOKS[name])) == flat.replace("( ", "(").replace(", )", ")")


def test_hookspecs_are_told_from_other_functions_by_their_marker() -> None:
    hooks = _new_hooks()

    assert hookspecs_of(SimpleNamespace(helper=lambda: None, **hooks)) == hooks
