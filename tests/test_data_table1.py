"""Loaders of the VampPrior Table 1 data sets, on small files written in the real formats.

Every file layout below is that of the distributed data: a known asymmetric "L" image (a bar
down the left edge and along the bottom, plus one pixel in the top-right corner region) must
come back upright, which catches row-/column-major mix-ups.
"""

import io
import pickle
import struct

import numpy as np
import pytest
import scipy.io
import torch

from pyrozoo.data import Dataset, DataNotFoundError
from pyrozoo.data import core
from pyrozoo.data.table1 import (BINARIZE_SEED, FOLDERS, OMNIGLOT_VALID, TABLE1, NumpyUnpickler, load_table1,
                                 read_amat)


def ell(h=28, w=28):
    """An "L": left column and bottom row on, plus the pixel (1, w - 3); no symmetry maps it to itself."""
    img = np.zeros((h, w), np.float32)
    img[:, 0] = 1
    img[-1, :] = 1
    img[1, w - 3] = 1
    return img


def rand_binary(rng, n, h=28, w=28):
    return (rng.random((n, h, w)) < 0.3).astype(np.float32)


def folder(root, key):
    d = root / FOLDERS[key]
    d.mkdir(parents=True, exist_ok=True)
    return d


# ----------------------------------------------------------------------------- writers


def write_amat(path, images):
    """Larochelle's format: one image per line, 784 row-major 0/1 values separated by spaces."""
    with open(path, "w") as f:
        for img in images:
            f.write(" ".join(str(int(v)) for v in img.ravel()) + "\n")


def write_static_mnist(root, rng):
    d = folder(root, "static-mnist")
    sets = {"train": rand_binary(rng, 6), "valid": rand_binary(rng, 3), "test": rand_binary(rng, 3)}
    sets["train"][0] = ell()
    for split, images in sets.items():
        write_amat(d / f"binarized_mnist_{split}.amat", images)
    return sets


def write_omniglot(root, rng, n_train=OMNIGLOT_VALID + 6, n_test=3):
    """chardata.mat: 784 x N, one image per column, each column-major (MATLAB order)."""
    train = rng.random((n_train, 28, 28)).astype(np.float32)
    train[0] = ell()
    test = rng.random((n_test, 28, 28)).astype(np.float32)
    test[1] = ell()
    test[2] = 0.5
    cols = lambda x: x.transpose(0, 2, 1).reshape(len(x), 784).T  # noqa: E731  column-major per image
    scipy.io.savemat(folder(root, "omniglot") / "chardata.mat", {"data": cols(train), "testdata": cols(test)})
    return train, test


def write_caltech(root, rng, sizes=(6, 3, 3)):
    """Marlin's split: N x 784 rows, column-major per image, silhouette 0 on a background of 1."""
    sets = [rand_binary(rng, n) for n in sizes]
    sets[0][2] = ell()
    content = {}
    for (split, n), images in zip(zip(("train", "val", "test"), sizes), sets):
        content[f"{split}_data"] = (1 - images).transpose(0, 2, 1).reshape(n, 784).astype(np.uint8)
        content[f"{split}_labels"] = np.arange(1, n + 1)[:, None] % 101 + 1
    scipy.io.savemat(folder(root, "caltech101") / "caltech101_silhouettes_28_split1.mat", content)
    return sets, content


def write_frey(root, rng, n=1965):
    """frey_rawface.mat: ff is 560 x N uint8, one 28x20 image per column in row-major order."""
    faces = rng.integers(0, 256, size=(n, 28, 20)).astype(np.uint8)
    faces[7] = (ell(28, 20) * 255).astype(np.uint8)
    scipy.io.savemat(folder(root, "frey-faces") / "frey_rawface.mat", {"ff": faces.reshape(n, 560).T})
    return faces


def write_histopathology(root, rng, data=None, protocol=2):
    """The authors' pickle: a dict of (N, 784) float arrays in [0, 1] (row-major images)."""
    if data is None:
        data = {k: (rng.integers(0, 256, size=(n, 784)) / 255.0).astype(np.float32)
                for k, n in (("training", 6), ("validation", 3), ("test", 3))}
        data["training"][4] = ell().ravel()
    with open(folder(root, "histopathology") / "histopathology.pkl", "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return data


# ----------------------------------------------------------------------------- static MNIST


def test_static_mnist_shapes_order_and_support(tmp_path):
    sets = write_static_mnist(tmp_path, np.random.default_rng(0))
    ds = load_table1("static-mnist", tmp_path)
    assert isinstance(ds, Dataset) and ds.name == "static-mnist"
    assert ds.train.shape == (6, 1, 28, 28) and ds.valid.shape == (3, 1, 28, 28) and ds.test.shape == (3, 1, 28, 28)
    assert ds.train.dtype == torch.float32
    assert ds.support == "binary" and ds.binarize is False and ds.levels == 2
    for split in ("train", "valid", "test"):  # each file feeds its own split, unchanged and in order
        assert torch.equal(ds.split(split)[:, 0], torch.from_numpy(sets[split]))
    assert torch.equal(ds.train[0, 0], torch.from_numpy(ell()))
    assert ds.train[0, 0, 1, 25] == 1 and ds.train[0, 0, 25, 1] == 0
    with pytest.raises(ValueError, match="already binary"):
        load_table1("static-mnist", tmp_path, binarize=True)


def test_amat_parser_fallback_and_errors(tmp_path):
    img = ell()
    p = tmp_path / "a.amat"
    p.write_text("\n" + " ".join(f"{v:.1f}" for v in img.ravel()) + "  \r\n\n")  # floats, CRLF, blank lines
    assert np.array_equal(read_amat(p), img.reshape(1, 784))
    p.write_text(" ".join("1" for _ in range(784)) + "\n" + " ".join("0" for _ in range(783)) + "\n")
    with pytest.raises(ValueError, match="line 2: 783 values"):
        read_amat(p)
    p.write_text(" ".join("2" if i == 5 else "0" for i in range(784)) + "\n")
    with pytest.raises(ValueError, match="line 1: values must be 0 or 1"):
        read_amat(p)
    p.write_text(" ".join("10" if i == 5 else "0" for i in range(784)) + "\n")  # multi-digit token
    with pytest.raises(ValueError, match="0 or 1"):
        read_amat(p)
    p.write_text("0 x 1\n")
    with pytest.raises(ValueError, match="line 1"):
        read_amat(p)


def test_static_mnist_malformed_file(tmp_path):
    write_static_mnist(tmp_path, np.random.default_rng(0))
    bad = tmp_path / FOLDERS["static-mnist"] / "binarized_mnist_valid.amat"
    bad.write_text(" ".join("1" for _ in range(700)) + "\n")
    with pytest.raises(ValueError, match="binarized_mnist_valid.amat, line 1: 700 values, expected 784"):
        load_table1("static-mnist", tmp_path)


# ----------------------------------------------------------------------------- OMNIGLOT


def test_omniglot_order_split_and_binarisation(tmp_path):
    train, test = write_omniglot(tmp_path, np.random.default_rng(1))
    ds = load_table1("omniglot", tmp_path)
    assert ds.train.shape == (6, 1, 28, 28) and ds.valid.shape == (OMNIGLOT_VALID, 1, 28, 28)
    assert ds.test.shape == (3, 1, 28, 28)
    assert ds.support == "binary" and ds.binarize is True and ds.levels is None
    # training images stay intensities; valid and test are 0/1
    assert ((ds.train > 0) & (ds.train < 1)).any() and 0 <= ds.train.min() and ds.train.max() <= 1
    for split in ("valid", "test"):
        assert set(ds.split(split).unique().tolist()) <= {0.0, 1.0}
    # the L stays upright through the fixed-seed binarisation (its pixels are exactly 0 or 1)
    assert torch.equal(ds.test[1, 0], torch.from_numpy(ell()))
    # a constant 0.5 image is binarised to a genuine mixture
    assert 0.3 < ds.test[2].mean() < 0.7
    # binarisation is a fixed-seed draw of the intensities: reproducible across loads
    again = load_table1("omniglot", tmp_path)
    assert torch.equal(again.valid, ds.valid) and torch.equal(again.test, ds.test)
    assert torch.equal(again.train, ds.train)
    cont = load_table1("omniglot", tmp_path, binarize=False)
    assert cont.support == "unit" and cont.binarize is False
    assert torch.equal(cont.test[:, 0], torch.from_numpy(test))
    expected = torch.bernoulli(cont.valid, generator=torch.Generator().manual_seed(BINARIZE_SEED))
    assert torch.equal(ds.valid, expected)
    # train and valid partition the file's training images; the split is a seeded shuffle
    rows = torch.cat([cont.train, cont.valid]).flatten(1)
    file_rows = torch.from_numpy(train).flatten(1)
    assert torch.equal(rows[rows[:, 0].argsort()], file_rows[file_rows[:, 0].argsort()])
    assert not torch.equal(cont.valid[:, 0], torch.from_numpy(train[-OMNIGLOT_VALID:]))
    assert any(torch.equal(x[0], torch.from_numpy(ell())) for x in torch.cat([cont.train, cont.valid]))


def test_omniglot_file_order_split_and_errors(tmp_path):
    from pyrozoo.data.table1 import load_omniglot
    train, _ = write_omniglot(tmp_path, np.random.default_rng(2))
    tr, va, te, meta = load_omniglot(tmp_path, binarize=False, split_seed=None)
    assert torch.equal(tr[:, 0], torch.from_numpy(train[:6])) and torch.equal(va[:, 0], torch.from_numpy(train[6:]))
    assert meta["support"] == "unit" and meta["files"][0].endswith("chardata.mat")
    # too few training images for the validation set
    write_omniglot(tmp_path, np.random.default_rng(2), n_train=OMNIGLOT_VALID)
    with pytest.raises(ValueError, match="cannot give 1345 validation"):
        load_table1("omniglot", tmp_path)
    # a wrong key and a wrong layout
    path = tmp_path / FOLDERS["omniglot"] / "chardata.mat"
    scipy.io.savemat(path, {"data": np.zeros((784, 2000)), "test": np.zeros((784, 3))})
    with pytest.raises(ValueError, match="lacks the variable.*testdata"):
        load_table1("omniglot", tmp_path)
    scipy.io.savemat(path, {"data": np.zeros((2000, 784)), "testdata": np.zeros((3, 784))})
    with pytest.raises(ValueError, match="784 x N"):
        load_table1("omniglot", tmp_path)
    scipy.io.savemat(path, {"data": np.full((784, 2000), 3.0), "testdata": np.zeros((784, 3))})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_table1("omniglot", tmp_path)
    path.write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(ValueError, match="not a readable MATLAB"):
        load_table1("omniglot", tmp_path)


# ----------------------------------------------------------------------------- Caltech 101


def test_caltech101_order_inversion_labels(tmp_path):
    sets, content = write_caltech(tmp_path, np.random.default_rng(3))
    ds = load_table1("caltech101", tmp_path)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (6, 3, 3) and ds.event_shape == (1, 28, 28)
    assert ds.support == "binary" and ds.binarize is False and ds.levels == 2
    for split, images in zip(("train", "valid", "test"), sets):
        assert torch.equal(ds.split(split)[:, 0], torch.from_numpy(images))
    assert torch.equal(ds.train[2, 0], torch.from_numpy(ell()))  # the object is 1 after the inversion
    assert ds.labels["train"].dtype == torch.int64
    assert ds.labels["valid"].tolist() == (content["val_labels"].ravel() - 1).tolist()
    with pytest.raises(ValueError, match="already binary"):
        load_table1("caltech101", tmp_path, binarize=True)
    from pyrozoo.data.table1 import load_caltech101
    raw = load_caltech101(tmp_path, invert=False)[0]
    assert torch.equal(raw, 1 - ds.train)


def test_caltech101_malformed(tmp_path):
    path = folder(tmp_path, "caltech101") / "caltech101_silhouettes_28_split1.mat"
    x = np.zeros((3, 784))
    scipy.io.savemat(path, {"train_data": x, "val_data": x, "test_data": x + 0.5})
    with pytest.raises(ValueError, match="test_data: values must be 0 or 1"):
        load_table1("caltech101", tmp_path)
    scipy.io.savemat(path, {"train_data": np.zeros((3, 700)), "val_data": x, "test_data": x})
    with pytest.raises(ValueError, match="784 pixels"):
        load_table1("caltech101", tmp_path)


# ----------------------------------------------------------------------------- Frey Faces


def test_frey_faces_order_split_and_scale(tmp_path):
    faces = write_frey(tmp_path, np.random.default_rng(4))
    ds = load_table1("frey-faces", tmp_path)
    assert ds.event_shape == (1, 28, 20)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (1565, 200, 200)
    assert ds.support == "unit" and ds.binarize is False and ds.levels == 256
    allx = torch.cat([ds.train, ds.valid, ds.test])
    assert allx.min() == 0 and allx.max() == 1
    assert torch.allclose(allx * 255, torch.round(allx * 255), atol=1e-4)
    # the splits partition the file's images (each file image appears exactly once)
    ref = torch.from_numpy(faces.astype(np.float32) / 255).flatten(1)
    got = allx.flatten(1)
    key = lambda x: x @ torch.linspace(1, 2, 560)  # noqa: E731  an order-free fingerprint
    assert torch.allclose(key(got).sort().values, key(ref).sort().values)
    # the L is upright (28 rows x 20 columns), wherever the seeded split put it
    hits = [x for x in allx if torch.equal(x[0], torch.from_numpy(ell(28, 20)))]
    assert len(hits) == 1
    # the split is seeded: identical on reload, not the file order
    again = load_table1("frey-faces", tmp_path)
    assert torch.equal(again.test, ds.test) and torch.equal(again.valid, ds.valid)
    assert not torch.equal(ds.train.flatten(1), ref[:1565])
    binary = load_table1("frey-faces", tmp_path, binarize=True)
    assert binary.support == "binary" and binary.binarize is True
    assert torch.equal(binary.train, ds.train) and set(binary.test.unique().tolist()) == {0.0, 1.0}


def test_frey_faces_malformed(tmp_path):
    path = folder(tmp_path, "frey-faces") / "frey_rawface.mat"
    scipy.io.savemat(path, {"ff": np.zeros((1965, 560), np.uint8)})
    with pytest.raises(ValueError, match="560 x N"):
        load_table1("frey-faces", tmp_path)
    scipy.io.savemat(path, {"ff": np.full((560, 1965), 300.0)})
    with pytest.raises(ValueError, match="0..255"):
        load_table1("frey-faces", tmp_path)


# ----------------------------------------------------------------------------- Histopathology


@pytest.mark.parametrize("protocol", [2, 5])
def test_histopathology_layout_and_grid(tmp_path, protocol):
    data = write_histopathology(tmp_path, np.random.default_rng(5), protocol=protocol)
    ds = load_table1("histopathology", tmp_path)
    assert ds.train.shape == (6, 1, 28, 28) and ds.valid.shape == (3, 1, 28, 28) and ds.test.shape == (3, 1, 28, 28)
    assert ds.support == "unit" and ds.binarize is False and ds.levels == 256
    assert torch.equal(ds.train[4, 0], torch.from_numpy(ell()))
    assert torch.allclose(ds.valid.flatten(1), torch.from_numpy(data["validation"]), atol=1e-6)
    assert torch.allclose(ds.test * 255, torch.round(ds.test * 255), atol=1e-4)


def test_histopathology_other_layouts_and_archive(tmp_path):
    import tarfile
    rng = np.random.default_rng(6)
    imgs = [rng.random((n, 28, 28)) for n in (4, 2, 2)]
    imgs[1][0] = ell()
    write_histopathology(tmp_path, rng, data=tuple(imgs))  # a 3-tuple of (N, 28, 28) float64 arrays
    from pyrozoo.data.table1 import load_histopathology
    tr, va, te, meta = load_histopathology(tmp_path)
    assert tr.shape == (4, 1, 28, 28) and torch.equal(va[0, 0], torch.from_numpy(ell()))
    assert 0 < meta["snap_offset"] <= 0.5 / 255 + 1e-7  # off-grid values snapped to k/255
    # only the authors' archive present: the pickle is extracted from it
    d = tmp_path / FOLDERS["histopathology"]
    with tarfile.open(d / "histopathology.pkl.tar.gz", "w:gz") as tar:
        tar.add(d / "histopathology.pkl", arcname="histopathology/histopathology.pkl")
    (d / "histopathology.pkl").unlink()
    assert load_table1("histopathology", tmp_path).train.shape == (4, 1, 28, 28)
    assert (d / "histopathology.pkl").is_file()


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` opcodes (BINSTRING), as a Python 2 numpy pickle does."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_bytes(self, obj):
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_bytes


def test_histopathology_python2_pickle(tmp_path):
    """A Python 2 era pickle (numpy.core module names, data as BINSTRING) loads through the allow-list."""
    x = (np.arange(3 * 784).reshape(3, 784) % 256 / 255.0).astype(np.float32)
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump({"training": x, "validation": x[:2], "test": x[:1]})
    raw = buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in raw and b"_codecs" not in raw
    (folder(tmp_path, "histopathology") / "histopathology.pkl").write_bytes(raw)
    ds = load_table1("histopathology", tmp_path)
    assert torch.allclose(ds.train.flatten(1), torch.from_numpy(x), atol=1e-7) and len(ds.test) == 1


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_histopathology_rejects_bad_structures_and_code(tmp_path):
    rng = np.random.default_rng(7)
    x = np.zeros((2, 784), np.float32)
    write_histopathology(tmp_path, rng, data={"training": x, "validation": x})
    with pytest.raises(ValueError, match="'training', 'validation', 'test'.*test are missing"):
        load_table1("histopathology", tmp_path)
    write_histopathology(tmp_path, rng, data=[x, x])
    with pytest.raises(ValueError, match="got list"):
        load_table1("histopathology", tmp_path)
    write_histopathology(tmp_path, rng, data={"training": x, "validation": x, "test": np.zeros((2, 700))})
    with pytest.raises(ValueError, match="28x28 images"):
        load_table1("histopathology", tmp_path)
    write_histopathology(tmp_path, rng, data={"training": x + 2, "validation": x, "test": x})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_table1("histopathology", tmp_path)
    # a pickle that would call open() is refused before anything runs
    victim = tmp_path / "pwned"
    write_histopathology(tmp_path, rng, data={"training": _Evil(str(victim)), "validation": x, "test": x})
    with pytest.raises(ValueError, match="refusing to load .*open"):
        load_table1("histopathology", tmp_path)
    assert not victim.exists()
    (tmp_path / FOLDERS["histopathology"] / "histopathology.pkl").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a pickle of numpy arrays"):
        load_table1("histopathology", tmp_path)
    assert issubclass(NumpyUnpickler, pickle.Unpickler)


# ----------------------------------------------------------------------------- common


@pytest.mark.parametrize("name, expected", [
    ("static-mnist", "binarized_mnist_train.amat"),
    ("omniglot", "chardata.mat"),
    ("caltech101", "caltech101_silhouettes_28_split1.mat"),
    ("frey-faces", "frey_rawface.mat"),
    ("histopathology", "histopathology.pkl"),
])
def test_missing_files_name_the_expected_path(tmp_path, name, expected):
    path = tmp_path / FOLDERS[name] / expected
    with pytest.raises(DataNotFoundError) as info:
        load_table1(name, tmp_path)
    assert str(path) in str(info.value) and "--download" in str(info.value)


def test_missing_one_static_mnist_file_names_only_it(tmp_path):
    write_static_mnist(tmp_path, np.random.default_rng(0))
    (tmp_path / FOLDERS["static-mnist"] / "binarized_mnist_test.amat").unlink()
    with pytest.raises(DataNotFoundError, match="binarized_mnist_test.amat") as info:
        load_table1("static-mnist", tmp_path)
    assert "binarized_mnist_train.amat" not in str(info.value)


def test_root_defaults_to_environment(tmp_path, monkeypatch):
    write_static_mnist(tmp_path, np.random.default_rng(0))
    monkeypatch.setenv("PYROZOO_DATA", str(tmp_path))
    assert load_table1("static-mnist").train.shape == (6, 1, 28, 28)


def test_unknown_name_and_registry():
    with pytest.raises(ValueError, match="choose from static-mnist, omniglot, caltech101, frey-faces, histopathology"):
        load_table1("svhn", "/nonexistent")
    assert set(TABLE1) == {"static-mnist", "omniglot", "caltech101", "frey-faces", "histopathology"}
    assert BINARIZE_SEED == core.BINARIZE_SEED


def test_alias_and_dynamic_batches(tmp_path):
    write_omniglot(tmp_path, np.random.default_rng(8))
    ds = load_table1("OMNIGLOT", tmp_path)
    torch.manual_seed(0)
    a = next(ds.batches("train", 6))
    b = next(ds.batches("train", 6))
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)


def test_table1_sets_load_through_pyrozoo_data_load(tmp_path):
    from pyrozoo.data import DATASETS, load
    rng = np.random.default_rng(0)
    write_caltech(tmp_path, rng)
    write_frey(tmp_path, rng)
    assert {"static-mnist", "omniglot", "caltech101", "frey-faces", "histopathology"} <= set(DATASETS)
    cal = load("caltech101", data_dir=tmp_path)
    assert cal.name == "caltech101" and cal.support == "binary" and cal.event_shape == (1, 28, 28)
    frey = load("frey-faces", data_dir=tmp_path)
    assert frey.support == "unit" and frey.levels == 256 and frey.event_shape == (1, 28, 20)
    with pytest.raises(DataNotFoundError, match="OMNIGLOT"):
        load("omniglot", data_dir=tmp_path)
