"""Generated descriptions of neural-network architectures: the data of the sequence VAE of Pavesi (2024), "Variational
Auto Encoders" (lecture notes), §4.1.

A description is a variable-length sequence of layers. One layer is a row of ``n_types + 1``
numbers: a one-hot layer type (:data:`LAYER_TYPES`) and one feature value in [0, 1] (the
normalised input size, width, kernel size, pool size or dropout rate; 0 for ``relu``,
``batchnorm`` and ``end``). A data set is a padded tensor ``(N, T_max, n_types + 1)``: rows
after the ``end`` row are all zero.

The grammar (as a regular expression over one letter per type, see :data:`GRAMMAR`)::

    input (conv [batchnorm] relu [pool])+ (linear relu [dropout])* linear end
"""

import re

import torch

LAYER_TYPES = ("input", "linear", "conv", "pool", "relu", "dropout", "batchnorm", "end")
N_TYPES = len(LAYER_TYPES)
#: Whether a layer type carries a feature value (else its value is 0).
HAS_VALUE = tuple(t in ("input", "linear", "conv", "pool", "dropout") for t in LAYER_TYPES)
_LETTER = dict(zip(LAYER_TYPES, "ilcprdbe"))
#: The grammar over type letters (i=input, l=linear, c=conv, p=pool, r=relu, d=dropout, b=batchnorm, e=end).
GRAMMAR = re.compile(r"i(cb?rp?)+(lrd?)*le")
#: At most 3 conv blocks of 4 layers and 2 dense blocks of 3 layers: 1 + 12 + 6 + 1 + 1 = 21 rows.
MAX_CONV_BLOCKS, MAX_DENSE_BLOCKS = 3, 2
MAX_LEN = 1 + 4 * MAX_CONV_BLOCKS + 3 * MAX_DENSE_BLOCKS + 2
MIN_LEN = 5  # input conv relu linear end
DEFAULT_SIZES = (4000, 500, 500)

# value grids (already normalised to [0, 1])
_INPUT = (0.125, 0.25, 0.5, 1.0)                  # input size 28, 56, 112, 224 (/ 224)
_KERNEL = (1 / 7, 3 / 7, 5 / 7, 1.0)              # kernel 1, 3, 5, 7
_POOL = (0.5, 1.0)                                # pool 2, 4
_WIDTH = tuple(2 ** k / 512 for k in range(4, 10))  # 16 ... 512 units
_RATE = (0.1, 0.2, 0.3, 0.4, 0.5)                 # dropout rate
_UNIFORMS = 32  # uniforms drawn per sequence (fixed budget: reproducible whatever max_len is)


def is_valid(types):
    """Whether a sequence of layer-type names (a list of strings) follows the grammar."""
    try:
        letters = "".join(_LETTER[t] for t in types)
    except (KeyError, TypeError):
        return False
    return GRAMMAR.fullmatch(letters) is not None


def _pick(options, u):
    return options[min(int(u * len(options)), len(options) - 1)]


def _one(u, max_len):
    """One description as a list of (type, value) pairs, from a list of 32 uniforms ``u``."""
    u = iter(u)
    n_conv = _pick(range(1, MAX_CONV_BLOCKS + 1), next(u))
    n_dense = _pick(range(0, MAX_DENSE_BLOCKS + 1), next(u))
    first = [("input", _pick(_INPUT, next(u)))]
    conv = []
    for _ in range(MAX_CONV_BLOCKS):
        block = [("conv", _pick(_KERNEL, next(u)))]
        if next(u) < 0.5:
            block.append(("batchnorm", 0.0))
        block.append(("relu", 0.0))
        if next(u) < 0.5:
            block.append(("pool", _pick(_POOL, next(u))))
        else:
            next(u)
        conv.append(block)
    dense = []
    for _ in range(MAX_DENSE_BLOCKS):
        block = [("linear", _pick(_WIDTH, next(u))), ("relu", 0.0)]
        if next(u) < 0.5:
            block.append(("dropout", _pick(_RATE, next(u))))
        else:
            next(u)
        dense.append(block)
    last = [("linear", _pick(_WIDTH, next(u))), ("end", 0.0)]
    conv, dense = conv[:n_conv], dense[:n_dense]

    def flat():
        return first + [layer for b in conv + dense for layer in b] + last

    while len(flat()) > max_len:  # drop whole blocks (dense first) until it fits
        (dense if dense else conv).pop()
    return flat()


def encode(descriptions, max_len):
    """Lists of (type name, value) pairs -> padded tensor ``(N, max_len, N_TYPES + 1)``."""
    x = torch.zeros(len(descriptions), max_len, N_TYPES + 1)
    for i, layers in enumerate(descriptions):
        if len(layers) > max_len:
            raise ValueError(f"description {i} has {len(layers)} layers, more than max_len={max_len}")
        for t, (name, value) in enumerate(layers):
            x[i, t, LAYER_TYPES.index(name)] = 1.0
            x[i, t, -1] = float(value)
    return x


def generate(n, max_len=MAX_LEN, generator=None):
    """``n`` random grammatical descriptions as a padded tensor ``(n, max_len, N_TYPES + 1)``.

    Blocks are drawn independently (1-3 conv blocks, 0-2 dense blocks, each optional layer with
    probability 1/2); a description longer than ``max_len`` loses whole trailing blocks, so
    every one stays grammatical. Draws from ``generator`` (a ``torch.Generator``) only.
    """
    if int(max_len) < MIN_LEN:
        raise ValueError(f"max_len must be at least {MIN_LEN} (input conv relu linear end), got {max_len}")
    u = torch.rand(int(n), _UNIFORMS, generator=generator).tolist()
    return encode([_one(row, int(max_len)) for row in u], int(max_len))


def sequence_lengths(x):
    """Number of non-padding rows (``end`` included) per sequence of ``x`` ``(N, T, D)``: ``(N,)`` long."""
    return (x[..., :-1].sum(-1) > 0).sum(-1).long()


def decode_types(x):
    """Layer-type names of each sequence of ``x`` ``(N, T, N_TYPES + 1)``, up to and including the
    first ``end`` (padding rows are skipped): a list of N lists of strings."""
    out = []
    for row_types, present in zip(x[..., :-1].argmax(-1).tolist(), (x[..., :-1].sum(-1) > 0).tolist()):
        names = []
        for k, p in zip(row_types, present):
            if p:
                names.append(LAYER_TYPES[k])
                if LAYER_TYPES[k] == "end":
                    break
        out.append(names)
    return out


def load_architectures(seed=0, sizes=DEFAULT_SIZES, max_len=MAX_LEN):
    """The ``architectures`` data set: train/valid/test descriptions drawn by one generator seeded
    with ``seed``; a :class:`pyrozoo.data.core.Dataset` with ``support="sequence"``."""
    from pyrozoo.data.core import Dataset  # here, so that core may import this module

    if len(sizes) != 3 or min(sizes) < 1:
        raise ValueError(f"sizes must be three positive numbers (train, valid, test), got {sizes}")
    g = torch.Generator().manual_seed(int(seed))
    parts = [generate(n, max_len=max_len, generator=g) for n in sizes]
    return Dataset("architectures", *parts, support="sequence")
