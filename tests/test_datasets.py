"""Datasets: bundled scikit-learn sets, MNIST-1D, the user's own files, and arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import hypergraph
from hypergraph import registry
from hypergraph.config import RunConfig
from hypergraph.datasets import DatasetBundle
from hypergraph.exceptions import DataError
from hypergraph.run import train

BUILTIN = {
    "iris": {},
    "wine": {},
    "breast_cancer": {},
    "diabetes": {},
    "mnist1d": {"num_samples": 600},
}


def load(name: str, seed: int = 0, **params: Any) -> DatasetBundle:
    ds = registry.resolve("dataset", name).from_params(params)
    bundle = ds.load(np.random.default_rng(seed))  # type: ignore[attr-defined]
    bundle.check()
    return bundle


def one_epoch(data: str | dict[str, Any], model: str = "mlp", **kw: Any) -> dict[str, Any]:
    config = RunConfig.model_validate({
        "seed": 0, "device": "cpu", "dataset": data, "model": model,
        "dataloader": {"name": "knn", "params": {"k": 5}},
        "trainer": {"name": "standard", "params": {"epochs": 1, "batch_size": 32}}})
    return train(config, **kw)


# ---------------------------------------------------------------- built-in datasets
@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_dataset_contract(name: str) -> None:
    a, b, c = load(name, 0, **BUILTIN[name]), load(name, 0, **BUILTIN[name]), \
        load(name, 1, **BUILTIN[name])
    np.testing.assert_array_equal(a.features(), b.features())
    np.testing.assert_array_equal(a.split, b.split)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.split, c.split)  # the seed matters
    assert set(np.unique(a.split).tolist()) == {0, 1, 2}
    X = a.features()
    assert X.dtype == np.float32 and np.isfinite(X).all()
    if a.task == "classification":
        assert a.num_classes > 1 and a.y.min() >= 0 and a.y.max() < a.num_classes
        # every class is in the training split
        assert set(np.unique(a.y[a.split == 0])) == set(range(a.num_classes))
    else:
        assert a.num_classes == 0 and a.num_outputs == 1 and np.isfinite(a.y).all()


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "diabetes"])
def test_standardised_on_train_rows_only(name: str) -> None:
    b = load(name)
    train_x = b.features()[b.split == 0].astype(np.float64)
    np.testing.assert_allclose(train_x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(train_x.std(0), 1, atol=1e-4)
    # the held-out rows are not exactly standardised: their statistics were not used
    assert np.abs(b.features()[b.split != 0].mean(0)).max() > 1e-3
    raw = load(name, standardize=False).features()
    assert np.abs(raw.mean(0)).max() > 1e-3 or np.abs(raw.std(0) - 1).max() > 1e-3


def test_diabetes_is_regression_with_scaled_targets() -> None:
    b = load("diabetes")
    assert b.task == "regression" and b.y.dtype == np.float32
    assert abs(float(b.y[b.split == 0].mean())) < 1e-5
    assert abs(float(b.y[b.split == 0].std()) - 1) < 1e-4


def test_mnist1d_generates_offline_without_touching_global_rngs() -> None:
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    b = load("mnist1d", num_samples=200)
    assert np.random.random() == before
    assert b.store.item_shape == (40,) and len(b) == 200 and b.num_classes == 10
    assert np.bincount(b.y).tolist() == [20] * 10


@pytest.mark.parametrize("name,model", [("iris", "logreg"), ("wine", "mlp"),
                                        ("breast_cancer", "logreg"), ("diabetes", "mlp"),
                                        ("mnist1d", "mlp")])
def test_builtin_trains_one_epoch(name: str, model: str) -> None:
    result = one_epoch({"name": name, "params": BUILTIN[name]}, model)
    assert result["epochs"] == 1
    key = "accuracy" if name != "diabetes" else "r2"
    assert np.isfinite(result["test"][key])


# ---------------------------------------------------------------- the user's files
def table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = np.array(["cat", "dog", "eel"])[np.arange(n) % 3]
    return pd.DataFrame({
        "a": rng.normal(size=n) + (np.arange(n) % 3),
        "b": rng.normal(size=n),
        "c": rng.integers(0, 5, n),
        "colour": np.array(["red", "blue"])[np.arange(n) % 2],
        "species": label,
    })


def write_csv(tmp_path: Path, df: pd.DataFrame, name: str = "data.csv") -> str:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


def test_csv_loads_features_labels_attributes(tmp_path: Path) -> None:
    path = write_csv(tmp_path, table())
    b = load("csv", path=path, label="species", attributes=["colour"])
    assert b.task == "classification" and b.num_classes == 3
    assert b.store.item_shape == (3,)  # a, b, c; not the label nor the attribute
    assert b.y.tolist()[:3] == [0, 1, 2]  # cat, dog, eel in sorted order
    assert set(b.attrs) == {"colour"} and b.attrs["colour"].dtype == np.int64
    assert set(np.unique(b.attrs["colour"]).tolist()) == {0, 1}
    again = load("csv", path=path, label="species", attributes=["colour"])
    np.testing.assert_array_equal(again.split, b.split)
    np.testing.assert_array_equal(again.features(), b.features())


def test_csv_split_column_and_feature_choice(tmp_path: Path) -> None:
    df = table(30).drop(columns=["colour"])
    df["split"] = (["train"] * 4 + ["val", "test"]) * 5
    b = load("csv", path=write_csv(tmp_path, df), label="species", features=["a", "b"])
    assert b.store.item_shape == (2,)
    assert np.bincount(b.split).tolist() == [20, 5, 5]
    assert b.split[:6].tolist() == [0, 0, 0, 0, 1, 2]


def test_csv_task_inference_and_override(tmp_path: Path) -> None:
    df = table(40).drop(columns=["colour", "species"])
    df["target"] = np.linspace(0, 1, 40) ** 2
    path = write_csv(tmp_path, df)
    assert load("csv", path=path, label="target").task == "regression"
    df["target"] = np.arange(40) % 4
    path = write_csv(tmp_path, df)
    assert load("csv", path=path, label="target").task == "classification"
    b = load("csv", path=path, label="target", task="regression")
    assert b.task == "regression" and b.num_classes == 0


def test_parquet_and_npz(tmp_path: Path) -> None:
    df = table()
    pq = tmp_path / "d.parquet"
    df.to_parquet(pq)
    b = load("parquet", path=str(pq), label="species", attributes=["colour"])
    assert b.store.item_shape == (3,) and b.num_classes == 3
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    y = np.arange(50) % 2
    np.savez(tmp_path / "d.npz", X=X, y=y)
    b = load("npz", path=str(tmp_path / "d.npz"))
    assert b.store.item_shape == (4,) and b.num_classes == 2


@pytest.mark.parametrize("fmt,model", [("csv", "mlp"), ("parquet", "logreg"), ("npz", "mlp")])
def test_file_datasets_train_one_epoch(tmp_path: Path, fmt: str, model: str) -> None:
    df = table(90)
    if fmt == "csv":
        params = {"path": write_csv(tmp_path, df), "label": "species",
                  "attributes": ["colour"]}
    elif fmt == "parquet":
        df.to_parquet(tmp_path / "d.parquet")
        params = {"path": str(tmp_path / "d.parquet"), "label": "species",
                  "attributes": ["colour"]}
    else:
        np.savez(tmp_path / "d.npz", X=df[["a", "b", "c"]].to_numpy(),
                 y=df["species"].to_numpy().astype(str))
        params = {"path": str(tmp_path / "d.npz")}
    result = one_epoch({"name": fmt, "params": params}, model)
    assert 0.0 <= result["test"]["accuracy"] <= 1.0


# ---------------------------------------------------------------- bad input
def bad_csv(tmp_path: Path, df: pd.DataFrame, **params: Any) -> str:
    params.setdefault("label", "species")
    with pytest.raises(DataError) as err:
        load("csv", path=write_csv(tmp_path, df), **params)
    return str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load("csv", path=str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="needs a file"):
        load("parquet")


def test_missing_label_column_lists_columns_and_closest(tmp_path: Path) -> None:
    msg = bad_csv(tmp_path, table(), label="specie")
    assert "no label column 'specie'" in msg and "Did you mean 'species'?" in msg
    assert "a, b, c, colour, species" in msg


def test_non_numeric_feature_named(tmp_path: Path) -> None:
    msg = bad_csv(tmp_path, table())  # colour is text and not declared an attribute
    assert "['colour']" in msg and "not numeric" in msg and "attributes" in msg
    df = table()
    df["a"] = df["a"].astype(object)
    df.loc[7, "a"] = "oops"
    msg = bad_csv(tmp_path, df, attributes=["colour"])
    assert "['a']" in msg and "row 7 holds 'oops'" in msg


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_named_by_row_and_column(tmp_path: Path, value: float) -> None:
    df = table()
    df.loc[[3, 11], "b"] = value
    msg = bad_csv(tmp_path, df, attributes=["colour"])
    assert "NaN or infinite" in msg and "rows 3, 11" in msg and "['b']" in msg
    assert "fill" in msg


def test_empty_split_and_bad_split_values(tmp_path: Path) -> None:
    df = table(30)
    df["split"] = ["train", "train", "val"] * 10
    msg = bad_csv(tmp_path, df, attributes=["colour"])
    assert "the test split is empty" in msg
    df["split"] = ["train", "train", "tset"] * 10
    msg = bad_csv(tmp_path, df, attributes=["colour"])
    assert "tset" in msg and "train, val or test" in msg


def test_class_only_outside_training_split(tmp_path: Path) -> None:
    df = table(30)
    df["split"] = ["train", "val", "test"] * 10
    df.loc[df["split"] != "train", "species"] = "fox"
    msg = bad_csv(tmp_path, df, attributes=["colour"])
    assert "['fox']" in msg and "only outside the training split" in msg


def test_malformed_files(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        load("csv", path=str(tmp_path / "x.csv"))
    (tmp_path / "y.csv").write_text('a,b,label\n1,2,x\n3,"4,y\n')
    with pytest.raises(DataError, match="not a readable CSV"):
        load("csv", path=str(tmp_path / "y.csv"))
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="not a readable Parquet"):
        load("parquet", path=str(tmp_path / "x.parquet"))
    (tmp_path / "x.npz").write_text("not npz")
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        load("npz", path=str(tmp_path / "x.npz"))
    np.savez(tmp_path / "k.npz", features=np.zeros((4, 2)), y=np.zeros(4))
    with pytest.raises(DataError, match="no array 'X'"):
        load("npz", path=str(tmp_path / "k.npz"))


def test_cli_bad_csv_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hypergraph.cli import main

    path = write_csv(tmp_path, table(), "bad.csv")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--dataset", "csv", "--set", f"dataset.path={path}", "--set",
              "dataset.label=label", "--epochs", "1", "--no-progress", "--out",
              str(tmp_path / "run")])
    assert exit_.value.code == 2
    assert "no label column 'label'" in " ".join(capsys.readouterr().err.split())


# ---------------------------------------------------------------- from_arrays
def test_from_arrays_trains_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = np.where(X[:, 0] > 0, "pos", "neg")
    ds = hypergraph.from_arrays(X, y, val_fraction=0.2, test_fraction=0.2)
    a, b = ds.load(np.random.default_rng(3)), ds.load(np.random.default_rng(3))
    np.testing.assert_array_equal(a.split, b.split)
    assert a.task == "classification" and a.num_classes == 2
    result = one_epoch("digits", "mlp", dataset=ds)
    assert result["test"]["accuracy"] >= 0.5
    reg = hypergraph.from_arrays(X, X[:, 0] * 2.5 + 0.1, split=np.arange(120) % 3)
    bundle = reg.load(np.random.default_rng(0))
    assert bundle.task == "regression" and np.bincount(bundle.split).tolist() == [40] * 3
    assert np.isfinite(one_epoch("digits", "mlp", dataset=reg)["test"]["r2"])


def test_from_arrays_fixed_seed_split() -> None:
    X, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    ds = hypergraph.from_arrays(X, y, seed=7)
    a, b = ds.load(np.random.default_rng(0)), ds.load(np.random.default_rng(1))
    np.testing.assert_array_equal(a.split, b.split)
    assert isinstance(ds.clone(), type(ds)) and ds.get_params()["seed"] == 7


def test_missing_labels_named(tmp_path: Path) -> None:
    df = table()
    df.loc[[5], "species"] = None
    msg = bad_csv(tmp_path, df, attributes=["colour"])
    assert "rows 5" in msg and "label" in msg


def test_from_arrays_bad_input() -> None:
    X = np.ones((10, 2))
    with pytest.raises(DataError, match="one per feature row"):
        hypergraph.from_arrays(X, np.zeros(9)).load(np.random.default_rng(0))
    X[4, 1] = np.nan
    with pytest.raises(DataError, match="rows 4"):
        hypergraph.from_arrays(X, np.arange(10) % 2).load(np.random.default_rng(0))
    with pytest.raises(DataError, match="features must be numeric"):
        hypergraph.from_arrays(np.array([["a"]] * 10), np.arange(10) % 2).load(
            np.random.default_rng(0))


def test_missing_default_label_column_suggests_the_usual_names_and_the_setting(
        tmp_path: Path) -> None:
    """A table whose label column is called ``target`` (scikit-learn's frames): the message
    points at it and says which setting names the label column."""
    df = table().rename(columns={"species": "target"})
    msg = bad_csv(tmp_path, df, label="label")
    assert "no label column 'label'" in msg and "Did you mean 'target'?" in msg
    assert "--set dataset.label=COLUMN" in msg
