"""``python -m pyrozoo``: the ``pyrozoo`` command (also under ``torchrun -m pyrozoo``)."""

from pyrozoo.cli import console

console()
