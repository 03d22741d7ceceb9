"""Resolving a run's configuration: the caller's options over the preset's defaults over the
global defaults, with every derived value written out, so ``config.json`` says exactly what ran.

A resolved configuration is a plain dict::

    {"preset": ..., "dataset": ..., "regime": ..., "options": {every option that applies}, "resumes": [...]}

A resumed run starts from the saved configuration; the caller may change only resumable
options (:data:`~pyrozoo.runs.options.OPTIONS` ``resumable``), and each change is recorded.
"""

from __future__ import annotations

from pyrozoo.runs.options import OPTIONS, check_options, check_value, default_eval_samples, options_for, unknown_option
from pyrozoo.zoo.registry import Recipe


def applicable(recipe: Recipe) -> list:
    """The option names that apply to ``recipe``: its regime's training options, the data, eval
    and run options, and the model options its builder takes."""
    model = set(recipe.model_options)
    return [n for n, o in options_for(recipe.regime).items() if o.group != "model" or n in model]


def check_for_recipe(recipe: Recipe, options: dict):
    """Refuse options that do not apply to ``recipe``, naming the ones that do."""
    valid = set(applicable(recipe))
    for name, value in options.items():
        if name not in OPTIONS:
            raise unknown_option(name, OPTIONS)
        if name in valid or value is None or value is False and OPTIONS[name].kind == "bool":
            continue
        option = OPTIONS[name]
        if option.group == "model":
            raise ValueError(f"{name} is not an option of preset {recipe.name!r}; its model options are "
                             f"{', '.join(recipe.model_options) or 'none'}")
        raise ValueError(f"{name} does not apply to preset {recipe.name!r} (trained by the {recipe.regime} regime); "
                         f"it applies to {', '.join(option.regimes)} presets")
    check_options(options)


def resolve(recipe: Recipe, options: dict) -> dict:
    """The resolved options of a new run of ``recipe`` given the caller's ``options`` (None
    values count as unset). Returns ``{name: value}`` for every applicable option."""
    given = {k: v for k, v in options.items() if v is not None}
    check_for_recipe(recipe, given)
    dataset = given.get("dataset") or recipe.defaults.get("dataset") or "digits"
    defaults = recipe.defaults_for(dataset)
    resolved = {}
    for name in applicable(recipe):
        option = OPTIONS[name]
        value = given.get(name, defaults.get(name, option.default))
        if name == "eval_samples" and name not in given:
            value = default_eval_samples(defaults.get("eval_samples", 5000))
        resolved[name] = check_value(option, value) if option.kind == "names" else value
    resolved["dataset"] = dataset
    _derive(recipe, resolved, given, defaults)
    return resolved


def _derive(recipe, resolved, given, defaults):
    """Fill values that follow from others, as the papers' schedules do."""
    if recipe.regime == "two-phase":
        if "phase_epochs" not in given and "epochs" in given:  # the paper's 1:2 split (100 + 200)
            a = max(1, given["epochs"] // 3)
            resolved["phase_epochs"] = [a, max(1, given["epochs"] - a)]
        resolved["phase_epochs"] = list(resolved["phase_epochs"])
        resolved["epochs"] = sum(resolved["phase_epochs"])
    if recipe.regime == "introspective":
        iterations, base = resolved["iterations"], defaults["iterations"]
        if "warmup_iterations" not in given:  # a shorter run keeps the paper's share of warm-up
            resolved["warmup_iterations"] = round(iterations * defaults["warmup_iterations"] / base)
        if "milestones" not in given:  # milestones at the paper's fractions of the run
            resolved["milestones"] = [round(iterations * m / base) for m in defaults["milestones"]]
    if recipe.regime in ("svi", "two-phase"):
        objective = resolved.get("objective")
        if objective != "free-bits":
            extra = [f for f in ("free_bits", "kl_groups") if given.get(f) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} apply to objective 'free-bits' only (this run uses "
                                 f"{objective!r})")
            resolved["free_bits"] = resolved["kl_groups"] = None


def changes_on_resume(saved: dict, options: dict) -> dict:
    """``{name: (saved value, new value)}`` for the options a resume changes; raises
    ``ValueError`` listing every change a resume cannot make."""
    old = saved["options"]
    diffs = {k: (old.get(k), v) for k, v in options.items() if v is not None and old.get(k) != v}
    refused = {k: d for k, d in diffs.items() if not OPTIONS[k].resumable}
    if refused:
        listed = "; ".join(f"{k}: {'the default' if a is None else repr(a)} -> {b!r}" for k, (a, b) in refused.items())
        raise ValueError(f"a resumed run cannot change {listed} (the checkpoint was trained with the saved values); "
                         f"start a new run instead. A resume may change: "
                         f"{', '.join(n for n, o in OPTIONS.items() if o.resumable)}")
    return diffs
