"""The preset registry: ``register`` a builder under a name, ``build`` it, list ``presets()``."""

_PRESETS = {}


def register(name, description, defaults=None):
    """Decorator registering a builder ``fn(event_shape, **options) -> model`` under ``name``.

    ``defaults`` holds training defaults (epochs, lr, warmup, ...) that the CLI uses unless
    a flag overrides them.
    """
    def deco(fn):
        _PRESETS[name] = (description, fn, dict(defaults or {}))
        return fn
    return deco


def presets():
    """``{name: one-line description}`` of every registered preset."""
    return {name: desc for name, (desc, _, _) in _PRESETS.items()}


def train_defaults(name):
    """The training defaults of a preset (a dict; may be empty)."""
    _check(name)
    return dict(_PRESETS[name][2])


def _check(name):
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(_PRESETS)}")


def build(name, event_shape=(1, 8, 8), **options):
    """Build preset ``name`` for data points of shape ``event_shape``; raises ``ValueError`` for an
    unknown preset or option."""
    _check(name)
    try:
        return _PRESETS[name][1](tuple(event_shape), **options)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise ValueError(f"unknown option for preset {name!r}: {err}") from None
        raise


def with_prior(builder, prior):
    """``builder`` with its ``prior`` option defaulting to ``prior`` (one builder, several presets);
    marks presets whose prior needs training images (``vampprior-data``)."""
    def build(event_shape, **options):
        options.setdefault("prior", prior)
        return builder(event_shape, **options)
    build.needs_data = prior == "vampprior-data"
    return build


def needs_data(name):
    """Whether preset ``name`` must be given training images (``data=``)."""
    _check(name)
    return bool(getattr(_PRESETS[name][1], "needs_data", False))
