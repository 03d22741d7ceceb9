"""Sphinx configuration of the pyrozoo documentation site.

Build it (strict: any warning, a broken reference or a failing docstring, fails the build)::

    python -m sphinx -W --keep-going -n -b html docs docs/_build/html

Pages that come from the code are written at build time by ``docs/_ext/pyrozoo_docs.py``: the
benchmark tables (from ``benchmarks/results/*.json``), each paper's preset table (from
``pyrozoo.zoo``) and the tutorials (copied from ``tutorials/`` with their stored outputs). The
command-line reference is generated from ``pyrozoo.cli.build_parser`` by the same extension; the API
reference from the docstrings by ``sphinx.ext.autodoc``.
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS / "_ext"))

import pyrozoo  # noqa: E402

project = "pyrozoo"
author = "the pyrozoo authors"
copyright = "the pyrozoo authors, MIT licence"
release = version = pyrozoo.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
    "pyrozoo_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "jupyter_execute", ".gitignore", "**.ipynb_checkpoints"]
root_doc = "index"

# MyST and notebooks: $...$ math as in the tutorials; notebooks are rendered with their stored
# outputs (scripts/run_tutorials.py executes them), never executed by the build.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_output_stderr = "show"
nb_merge_streams = True

# API reference: every module's documented objects (docs/api/*.rst), from their docstrings.
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_inherit_docstrings = False
# docs/_ext/pyrozoo_docs.py adds a documenter for module constants (Sphinx 9 runs those through the
# class-based implementation).
autodoc_use_legacy_class_based = True
autodoc_member_order = "groupwise"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autoclass_content = "both"

# Strict references: a reference to a pyrozoo object that does not exist fails the build.
# Third-party names (no network for intersphinx inventories) are not checked.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|pyro|numpy|np|arviz|az|matplotlib|plt|sklearn|pandas|scipy|safetensors|tqdm|argparse|"
               r"pathlib|typing|collections|dataclasses|os|io|json|enum|abc|contextlib|functools|pickle|re|"
               r"constraints)(\..*)?"),
    (r"py:.*", r"(Tensor|Module|Distribution|TorchDistribution|Path|Axes|Figure|InferenceData|Callable|Iterable|"
               r"Iterator|Sequence|Mapping|Any|Optional|Union|ndarray|optional)"),
]

html_theme = "furo"
html_title = f"pyrozoo {release}"
html_static_path = []
# equations are typeset in the reader's browser by MathJax, loaded from its CDN (Sphinx's default)
