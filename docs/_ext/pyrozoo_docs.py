"""Sphinx extension: write the documentation pages that come from the code, at build time.

Into ``docs/_generated/`` (never edited by hand, not kept in git):

- ``results/NAME.md``: the benchmark tables of ``benchmarks/results/NAME.json``, through the table
  functions of ``benchmarks/report.py`` (the same ones that print the README's tables);
- ``presets/MODULE.md``: the presets of ``pyrozoo/zoo/MODULE.py`` with their regime, model flags and
  training defaults, read from the registry; ``presets/regimes.md``: the training flags per regime;
- ``tutorials/*.ipynb``: the notebooks of ``tutorials/``, with the outputs they are stored with;
- ``figures/NAME.png``: one figure of a stored tutorial per paper page (:data:`FIGURES`).

A file is rewritten only when its text changes, so an unchanged page is not rebuilt.

The API reference documents each object once, in the module that defines it; the public name of a
re-exported object (``pyrozoo.train``, ``pyrozoo.zoo.PRIORS``) is an alias that references resolve
to (:func:`public_aliases`), and ``pyrozoo-public`` lists a package's public names.

The directive ``pyrozoo-cli`` renders the parser of ``pyrozoo.cli.build_parser`` (each command's usage
and its arguments by group, help texts as plain text), so the command-line page is the parser.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import inspect
import json
import pkgutil
import re
import shutil
import sys
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.ext.autodoc import DataDocumenter, ModuleDocumenter
from sphinx.util.docutils import SphinxDirective

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
OUT = DOCS / "_generated"

#: benchmark result file -> the function of benchmarks/report.py that tabulates it
RESULT_TABLES = {"vae_family": "family_table", "vampprior-mnist": "vampprior_table",
                 "vampprior-fashion-mnist": "vampprior_table", "rvae": "rvae_table",
                 "rvae_before_geodesic": "rvae_table",
                 "rvae-cuda": "rvae_table", "sintrovae_2d": "sintrovae_table", "stein_hyperprior": "stein_table",
                 "stein_hyperprior_equal_compute": "stein_compute_table", "speed": "speed_table",
                 "scaling": "scaling_table", "presets_digits": "presets_table",
                 "autocast": "autocast_table", "cuda-graph": "cuda_graph_table",
                 "rvae_speed": "rvae_speed_table"}
#: the zoo modules, one per paper
ZOO_MODULES = ("classic", "vampprior", "riemannian", "intro", "stein")
#: figure name -> (tutorial, index of the PNG among the notebook's image outputs)
FIGURES = {"classic": ("02_posterior_families", 1), "vampprior": ("03_vampprior", 0),
           "riemannian": ("06_riemannian_prior", 1), "intro": ("04_intro_prior", 2),
           "stein": ("05_stein_hyperprior", 1)}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _report_module():
    spec = importlib.util.spec_from_file_location("pyrozoo_benchmark_report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def sintrovae_mnist_table(res: dict) -> str:
    """The MNIST image runs of ``benchmarks/results/sintrovae_mnist.json`` (the main run, then each of
    ``other_runs``, one column each) beside the range of Athanasiadis et al. (2025) Table 5 over its priors."""
    runs = [res] + list(res.get("other_runs", []))
    paper = res.get("paper_table5_mnist_range", {})

    def rng(key):
        return "–" if key not in paper else f"{paper[key][0]:.3f}–{paper[key][1]:.3f}"

    def column(s):
        return [f"{s['svm_2k']:.3f} / {s['svm_10k']:.3f}", f"{s['knn_5']:.3f} / {s['knn_100']:.3f}",
                f"{s['responsibility_entropy']:.3f}", f"{s['classifier_fid_gen']:.1f} / {s['classifier_fid_rec']:.1f}",
                f"{s['test_log_likelihood']:.1f} (S = {s['num_samples']})", f"{s['train_seconds'] / 60:.0f} min"]

    names = ["linear SVM, 2k / 10k iterations", "5-NN / 100-NN", "responsibility entropy",
             "classifier-FID (not Inception), samples / reconstructions", "test log p(x)", "training time"]
    theirs = [rng("svm_2k"), f"{rng('knn_5')} / {rng('knn_100')}", "–", "Inception FID, not comparable", "–", "–"]
    columns = [column(r["summary"]) for r in runs]
    rows = [[name, *(c[i] for c in columns), theirs[i]] for i, name in enumerate(names)]
    header = ["metric", *(f"ours: {r.get('label', 'this run')}" for r in runs),
              "paper, MNIST (Table 5, range over priors)"]
    setups = "\n\n".join(f"Setup ({r.get('label', 'this run')}): {r['setup']}." for r in runs)
    return f"{setups}\n\n" + _table(header, rows)


def write_results() -> None:
    """``_generated/results/NAME.md`` for every benchmark result file."""
    report = _report_module()
    tables = dict(RESULT_TABLES, sintrovae_mnist=sintrovae_mnist_table)
    for name, fn in tables.items():
        path = ROOT / "benchmarks" / "results" / f"{name}.json"
        if not path.exists():
            text = f"*No results yet: `benchmarks/results/{name}.json` is missing.*\n"
        else:
            fn = getattr(report, fn) if isinstance(fn, str) else fn
            text = fn(json.loads(path.read_text())) + "\n"
        _write(OUT / "results" / f"{name}.md", f"<!-- generated from benchmarks/results/{name}.json -->\n\n{text}")


def _value(v) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def write_presets() -> None:
    """``_generated/presets/MODULE.md`` per zoo module and ``presets/regimes.md``."""
    from pyrozoo import zoo
    from pyrozoo.runs.options import OPTIONS, REGIMES, options_for

    by_module = {m: [] for m in ZOO_MODULES}
    for name in zoo.presets():
        r = zoo.recipe(name)
        module = r.builder.__module__.rsplit(".", 1)[-1]
        flags = ", ".join(f"`{OPTIONS[o].flag}`" for o in r.model_options)
        defaults = ", ".join(f"`{OPTIONS[k].flag} {_value(v)}`" for k, v in r.defaults.items())
        by_module.setdefault(module, []).append(
            [f"`{name}`", r.description.replace("|", "\\|"), r.regime, flags or "–", defaults or "–"])
    for module, rows in by_module.items():
        text = _table(["preset", "what it is", "regime", "model flags", "defaults (flags)"], rows)
        _write(OUT / "presets" / f"{module}.md", f"<!-- generated from pyrozoo.zoo.{module} -->\n\n{text}\n")
    rows = []
    for regime in REGIMES:
        names = [o.flag for o in options_for(regime).values() if o.group == "train"]
        rows.append([regime, ", ".join(f"`{f}`" for f in names)])
    _write(OUT / "presets" / "regimes.md",
           "<!-- generated from pyrozoo.runs.options -->\n\n" + _table(["regime", "training flags"], rows) + "\n")


def copy_tutorials() -> None:
    """``_generated/tutorials/*.ipynb``: the stored notebooks, outputs included."""
    target = OUT / "tutorials"
    target.mkdir(parents=True, exist_ok=True)
    sources = {p.name: p for p in sorted((ROOT / "tutorials").glob("*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in sources:
            stale.unlink()
    for name, src in sources.items():
        dst = target / name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)


def write_figures() -> None:
    """``_generated/figures/NAME.png``: the chosen PNG output of a stored tutorial."""
    for name, (tutorial, index) in FIGURES.items():
        nb = json.loads((ROOT / "tutorials" / f"{tutorial}.ipynb").read_text())
        images = [out["data"]["image/png"] for cell in nb["cells"] if cell["cell_type"] == "code"
                  for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
        if len(images) <= index:
            raise RuntimeError(f"tutorials/{tutorial}.ipynb has {len(images)} stored figures, the docs need figure "
                               f"{index + 1}: run python scripts/run_tutorials.py tutorials/{tutorial}.ipynb")
        data = images[index]
        data = "".join(data) if isinstance(data, list) else data
        path = OUT / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        png = base64.b64decode(data)
        if not path.exists() or path.read_bytes() != png:
            path.write_bytes(png)


def generate(app=None) -> None:
    """Write every generated page (at ``config-inited``)."""
    write_results()
    write_presets()
    copy_tutorials()
    write_figures()


def _assigns(module, name: str) -> bool:
    """Whether the source of ``module`` assigns ``name`` at top level."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return False
    return re.search(rf"^{re.escape(name)}\s*(:[^=\n]*)?=", source, re.M) is not None


class ConstantDocumenter(DataDocumenter):
    """Module-level constants (``UPPER_CASE`` names assigned in the module), also without a
    ``#:`` comment; a value whose repr is long (a table of options) is not printed."""

    objtype = "pyrozooconstant"
    directivetype = "data"
    priority = DataDocumenter.priority + 1

    @classmethod
    def can_document_member(cls, member, membername, isattr, parent):
        return (isinstance(parent, ModuleDocumenter) and membername.isupper() and not inspect.ismodule(member)
                and (isattr or _assigns(parent.object, membername)))

    def should_suppress_value_header(self):
        return super().should_suppress_value_header() or len(repr(self.object)) > 150

    def get_doc(self):
        comment = self.get_module_comment(self.objpath[-1])
        return [comment] if comment else []


def skip_foreign(app, what, name, obj, skip, options):
    """``autodoc-skip-member``: a module's classes and functions from other libraries (re-exported
    in its ``__all__``) are not documented as pyrozoo's."""
    if what == "module" and (inspect.isclass(obj) or inspect.isfunction(obj)):
        if not getattr(obj, "__module__", "").startswith("pyrozoo"):
            return True
    return None


def _defining_module(package, name, obj) -> str | None:
    """The submodule of ``package`` that defines ``name``: ``__module__`` for classes and
    functions, else the module whose source assigns ``name`` at top level."""
    module = getattr(obj, "__module__", None)
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and module:
        return module
    pattern = re.compile(rf"^{re.escape(name)}\s*(:[^=\n]*)?=", re.M)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        sub = importlib.import_module(info.name)
        if getattr(sub, name, None) is obj and pattern.search(inspect.getsource(sub)):
            return info.name
    return None


def public_aliases() -> dict:
    """``{public name: documented name}`` for every name in the ``__all__`` of ``pyrozoo`` and its
    subpackages that is defined in a submodule (``pyrozoo.train`` -> ``pyrozoo.runs.run.train``)."""
    import pyrozoo

    aliases = {}
    for package in [pyrozoo] + [importlib.import_module(f"pyrozoo.{n}") for n in pyrozoo.SUBPACKAGES]:
        for name in getattr(package, "__all__", ()):
            obj = getattr(package, name)
            if inspect.ismodule(obj):
                continue
            module = _defining_module(package, name, obj)
            qualname = getattr(obj, "__qualname__", name) if inspect.isclass(obj) or inspect.isfunction(obj) \
                else name
            if module and module != package.__name__:
                aliases[f"{package.__name__}.{name}"] = f"{module}.{qualname}"
    return aliases


def resolve_alias(app, env, node, contnode):
    """``missing-reference``: resolve a Python reference that names an object by a path other than
    the one it is documented under: a public alias (:func:`public_aliases`; also a member of an
    aliased class, ``pyrozoo.runs.Run.evaluate``), a name relative to a package above the current
    module (``VampPrior`` in :mod:`pyrozoo.distributions.intro_prior`), a name the current module
    imports (``SteinMixture`` in :mod:`pyrozoo.guides.stein`), or a method that the current class
    inherits (``check_data`` in ``VAE``, documented in ``ZooModel``)."""
    if node.get("refdomain") != "py":
        return None
    aliases, domain = env.app.pyrozoo_aliases, env.get_domain("py")
    target = node["reftarget"]
    module = node.get("py:module") or ""
    parents = [".".join(module.split(".")[:i]) for i in range(module.count(".") + 1, 0, -1)] if module else []
    candidates = [target] + [f"{p}.{target}" for p in parents]
    head, *rest = target.split(".", 1)
    obj = getattr(sys.modules.get(module), head, None)
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith("pyrozoo"):
        candidates.append(".".join([f"{obj.__module__}.{obj.__qualname__}"] + rest))
    cls = getattr(sys.modules.get(module), (node.get("py:class") or "").split(".")[0], None)
    if inspect.isclass(cls):  # a method inherited from a pyrozoo base class, documented there
        owner = next((c for c in cls.__mro__ if head in vars(c)), None)
        if owner is not None and owner.__module__.startswith("pyrozoo"):
            candidates.append(".".join([f"{owner.__module__}.{owner.__qualname__}", target]))
    for candidate in candidates:
        parts = candidate.split(".")
        real = next((".".join([aliases[".".join(parts[:cut])]] + parts[cut:]) for cut in range(len(parts), 0, -1)
                     if ".".join(parts[:cut]) in aliases), candidate)
        if real != target:
            found = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], real, node, contnode)
            if found is not None:
                return found
    return None


class PublicNames(SphinxDirective):
    """``.. pyrozoo-public:: PACKAGE``: the names of ``PACKAGE.__all__``, each a reference."""

    required_arguments = 1

    def run(self):
        package = importlib.import_module(self.arguments[0])
        para = nodes.paragraph()
        for i, name in enumerate(package.__all__):
            if i:
                para += nodes.Text(", ")
            ref = addnodes.pending_xref("", refdomain="py", reftype="obj", reftarget=f"{package.__name__}.{name}",
                                        refexplicit=False, refwarn=True)
            ref += nodes.literal(text=name)
            para += ref
        return [para]


def _argument_name(action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    return ", ".join(f"{flag} {metavar}" for flag in action.option_strings)


class CommandLine(SphinxDirective):
    """``.. pyrozoo-cli::``: one section per command of ``pyrozoo.cli.build_parser()``."""

    def run(self):
        import argparse

        from pyrozoo.cli import build_parser

        parser = build_parser()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        helps = {c.dest: c.help for c in commands._choices_actions}
        out = []
        for name, sub in commands.choices.items():
            section = nodes.section(ids=[f"pyrozoo-{name}"], names=[f"pyrozoo {name}"])
            section += nodes.title(text=f"pyrozoo {name}")
            if helps.get(name):
                section += nodes.paragraph(text=helps[name][0].upper() + helps[name][1:] + ".")
            section += nodes.literal_block(text=sub.format_usage().strip())
            for group in sub._action_groups:
                actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS
                           and not isinstance(a, argparse._HelpAction)]
                if not actions:
                    continue
                section += nodes.rubric(text=group.title)
                items = nodes.definition_list()
                for action in actions:
                    term = nodes.term()
                    term += nodes.literal(text=_argument_name(action))
                    text = action.help or ""
                    if action.choices and not action.option_strings:
                        text = (text + "; " if text else "") + "one of " + ", ".join(map(str, action.choices))
                    definition = nodes.definition()
                    definition += nodes.paragraph(text=text or "–")
                    items += nodes.definition_list_item("", term, definition)
                section += items
            out.append(section)
        return out


def check_api_pages() -> None:
    """Every module of pyrozoo has an ``automodule`` in ``docs/api/*.rst`` or ``docs/cli.md``; a
    module without one fails the build with its name."""
    import pyrozoo

    text = "\n".join(p.read_text() for p in [*sorted((DOCS / "api").glob("*.rst")), DOCS / "cli.md"])
    documented = set(re.findall(r"automodule:: (\S+)", text))
    modules = {m.name for m in pkgutil.walk_packages(pyrozoo.__path__, "pyrozoo.")} - {"pyrozoo.__main__"}
    missing = sorted(modules - documented)
    if missing:
        raise RuntimeError(f"modules without an API page: {', '.join(missing)}; add an automodule for each to "
                           "the page of their package in docs/api/")


def _init(app, config=None) -> None:
    check_api_pages()
    generate()
    app.pyrozoo_aliases = public_aliases()


def setup(app):
    app.connect("config-inited", _init)
    app.connect("missing-reference", resolve_alias)
    app.connect("autodoc-skip-member", skip_foreign)
    app.setup_extension("sphinx.ext.autodoc")
    app.add_autodocumenter(ConstantDocumenter)
    app.add_directive("pyrozoo-cli", CommandLine)
    app.add_directive("pyrozoo-public", PublicNames)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
