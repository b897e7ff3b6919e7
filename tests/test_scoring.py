"""Tests of uplift.scoring's file scoring and of uplift.data.chunks, which it streams through.

The model is a small T-learner on LightGBM (20 trees, one thread) fitted on a simulated
trial-lessons campaign with two treatment arms and the offer's cost on the predicted
uptake, so every part of ``ScoringModel.predict`` runs. ``score_file`` must write what
``predict`` gives on the whole base at once, whatever the chunking and the formats, and
must never leave a half-written file behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uplift.analysis.features import FeatureEncoder
from uplift.analysis.learners import fit_uplift, make_base
from uplift.data import chunks
from uplift.data.chunks import ChunkWriter, iter_chunks
from uplift.data.simulate import simulate
from uplift.errors import DataError
from uplift.scoring import NO_ARM, ScoreReport, ScoringModel, score_file
from uplift.value.costs import TrialLessonsCost

ID = "customer_id"
FEATURES = ["recency_days", "frequency_180d", "monetary_180d", "tenure_days", "plan"]
TREATMENTS = ("two_lessons", "four_lessons")
FAST: dict[str, object] = {
    "n_estimators": 20,
    "learning_rate": 0.1,
    "min_child_samples": 50,
    "n_jobs": 1,
}


def small_model(n: int = 3000, seed: int = 5) -> tuple[ScoringModel, pd.DataFrame]:
    """A scoring model fitted on a simulated campaign, and that campaign's base."""
    sim = simulate("trial_lessons", n, seed, list(TREATMENTS))
    base = sim.population
    arms = pd.Series(
        np.random.default_rng(seed).choice(["control", *TREATMENTS], n), index=base.index
    )
    outcomes = sim.draw(arms)
    encoder = FeatureEncoder(FEATURES).fit(base)
    x = encoder.transform(base).to_numpy()
    uplift = fit_uplift(
        "t_learner",
        x,
        arms.to_numpy(),
        outcomes["revenue_60d"].to_numpy(),
        "control",
        TREATMENTS,
        seed=seed,
        base_params=FAST,
    )
    took = outcomes["took_trial"].to_numpy(dtype=float)
    arm_outcomes = {
        arm: {"took_trial": make_base("lightgbm", seed, FAST).fit(x[mask], took[mask])}
        for arm in TREATMENTS
        for mask in [(arms == arm).to_numpy()]
    }
    model = ScoringModel(
        id_column=ID,
        encoder=encoder,
        uplift=uplift,
        metric="revenue",
        value_per_unit=0.55,
        contact_cost=0.04,
        cost_models={
            "two_lessons": TrialLessonsCost(5.0, 14.0, "took_trial"),
            "four_lessons": TrialLessonsCost(10.0, 28.0, "took_trial"),
        },
        arm_outcomes=arm_outcomes,
        learner="t_learner",
    )
    return model, base[[ID, *FEATURES]].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted() -> tuple[ScoringModel, pd.DataFrame]:
    return small_model()


def assert_same_scores(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal ids and arms, numbers equal to 1e-12."""
    assert list(found.columns) == list(expected.columns)
    assert found[ID].astype(str).tolist() == expected[ID].astype(str).tolist()
    assert found["recommended_arm"].tolist() == expected["recommended_arm"].tolist()
    numbers = [c for c in expected.columns if c not in (ID, "recommended_arm")]
    np.testing.assert_allclose(
        found[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=0, atol=1e-12
    )


def leftovers(directory: Path) -> list[str]:
    """Temporary files of a writer left in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --- ScoringModel.predict ----------------------------------------------------------------


def test_predict_keeps_the_frame_index_and_recommends_the_best_paying_arm(
    fitted: tuple[ScoringModel, pd.DataFrame],
) -> None:
    model, base = fitted
    frame = base.iloc[:400].set_axis(pd.Index(np.arange(400) * 7 + 3), axis=0)
    scores = model.predict(frame)

    assert scores.index.equals(frame.index)
    assert list(scores.columns) == model.output_columns()
    assert scores[ID].tolist() == frame[ID].tolist()
    net = scores[["net_value_two_lessons", "net_value_four_lessons"]].to_numpy()
    best = np.asarray(TREATMENTS)[net.argmax(axis=1)]
    expected = np.where(net.max(axis=1) > 0, best, NO_ARM)
    assert scores["recommended_arm"].tolist() == expected.tolist()
    # the simulated campaign has customers where the lessons pay and where they do not
    assert set(expected) >= {NO_ARM, "two_lessons"}


# --- iter_chunks --------------------------------------------------------------------------


def test_parquet_chunks_hold_chunk_size_rows_of_the_asked_columns_in_file_order(
    tmp_path: Path, fitted: tuple[ScoringModel, pd.DataFrame]
) -> None:
    _, base = fitted
    path = tmp_path / "base.parquet"
    # row groups of 700 rows: chunks of 1,000 must cross them
    pq.write_table(pa.Table.from_pandas(base, preserve_index=False), path, row_group_size=700)

    parts = list(iter_chunks(path, ["plan", ID, "recency_days"], 1000))

    assert [len(p) for p in parts] == [1000, 1000, 1000]
    assert all(list(p.columns) == ["plan", ID, "recency_days"] for p in parts)
    assert all(p.index.equals(pd.RangeIndex(len(p))) for p in parts)
    whole = pd.concat(parts, ignore_index=True)
    assert whole[ID].tolist() == base[ID].tolist()
    assert whole["recency_days"].tolist() == base["recency_days"].tolist()
    assert whole["plan"].tolist() == base["plan"].tolist()


def test_csv_reads_ids_as_text_and_widens_integers_that_later_blocks_make_fractional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # blocks of 64 bytes: Arrow infers the types from the first few rows only
    monkeypatch.setattr(chunks, "_CSV_BLOCK", 64)
    rows = ["id,visits,spend,note,plan"]
    rows += [f"00{i},{i},,x,free" for i in range(1, 40)]
    rows += ["0040,2.5,12.75,,pro", "0041,,3,y,"]
    path = tmp_path / "base.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    parts = list(iter_chunks(path, ["id", "visits", "spend", "plan"], 15, text_columns=["id"]))

    assert [len(p) for p in parts] == [15, 15, 11]
    whole = pd.concat(parts, ignore_index=True)
    assert whole["id"].tolist()[:2] == ["001", "002"]  # leading zeros kept
    assert whole["id"].tolist()[-2:] == ["0040", "0041"]
    assert whole["visits"].dtype == np.float64
    assert whole["visits"].tolist()[-3:-1] == [39.0, 2.5]
    assert np.isnan(whole["visits"].iloc[-1])
    # empty in the first block, numbers later: read as float, not as a null column
    assert whole["spend"].isna().sum() == 39
    assert whole["spend"].tolist()[-2:] == [12.75, 3.0]
    assert whole["plan"].tolist()[-3:-1] == ["free", "pro"]
    assert pd.isna(whole["plan"].iloc[-1])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_missing_columns_are_named_with_the_columns_the_file_has(
    tmp_path: Path, suffix: str
) -> None:
    frame = pd.DataFrame({"customer_id": ["a", "b"], "recency_days": [1, 2]})
    path = tmp_path / f"base{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)

    # raised by the call itself, before any chunk is asked for
    with pytest.raises(DataError) as raised:
        iter_chunks(path, ["customer_id", "plan", "tenure_days"], 10, key="--population")
    message = str(raised.value)
    assert message.startswith(f"--population: the {suffix[1:]} file {path} has no columns ")
    assert "'plan', 'tenure_days'" in message
    assert "found ['customer_id', 'recency_days']" in message


def test_a_missing_file_and_another_extension_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"the parquet file .*nowhere\.parquet does not exist"):
        iter_chunks(tmp_path / "nowhere.parquet", ["a"], 10)
    (tmp_path / "base.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match=r"must end in \.csv or \.parquet .* found '\.json'"):
        iter_chunks(tmp_path / "base.json", ["a"], 10)


def test_a_file_that_is_not_parquet_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "base.parquet"
    path.write_text("customer_id\na\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"the parquet file .*base\.parquet cannot be read: "):
        iter_chunks(path, ["customer_id"], 10)


# --- ChunkWriter ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_writer_appends_chunks_and_publishes_them_whole(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"scores{suffix}"
    with ChunkWriter(out) as writer:
        writer.write(pd.DataFrame({"id": ["a", "b"], "x": [1.5, 2.0]}))
        assert not out.exists()  # nothing at the target until the end
        writer.write(pd.DataFrame({"id": ["c"], "x": [np.nan]}))
    read = pd.read_csv(out, dtype={"id": str}) if suffix == ".csv" else pd.read_parquet(out)
    assert read["id"].tolist() == ["a", "b", "c"]
    assert read["x"].tolist()[:2] == [1.5, 2.0]
    assert np.isnan(read["x"].iloc[2])
    assert writer.rows == 3
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_writer_failing_half_way_leaves_the_earlier_file_and_no_temporary_file(
    tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"scores{suffix}"
    out.write_bytes(b"the earlier export")
    with pytest.raises(RuntimeError, match="disk on fire"), ChunkWriter(out) as writer:
        writer.write(pd.DataFrame({"id": ["a"], "x": [1.0]}))
        assert leftovers(tmp_path)  # the rows went to a temporary file
        raise RuntimeError("disk on fire")
    assert out.read_bytes() == b"the earlier export"
    assert leftovers(tmp_path) == []


# --- score_file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "chunk_size"),
    [
        (".parquet", ".parquet", 700),
        (".csv", ".csv", 1000),
        (".csv", ".parquet", 3000),
        (".parquet", ".csv", 10_000),
    ],
)
def test_score_file_writes_what_predict_gives_on_the_whole_base(
    tmp_path: Path,
    fitted: tuple[ScoringModel, pd.DataFrame],
    source: str,
    target: str,
    chunk_size: int,
) -> None:
    model, base = fitted
    population = tmp_path / f"base{source}"
    wide = base.assign(unused=1)  # columns the model does not need are not read
    if source == ".csv":
        wide.to_csv(population, index=False)
    else:
        wide.to_parquet(population, index=False)
    out = tmp_path / f"scores{target}"
    lines: list[str] = []

    result = score_file(model, population, out, chunk_size=chunk_size, report=lines.append)

    expected = model.predict(base)
    found = pd.read_csv(out) if target == ".csv" else pd.read_parquet(out)
    assert_same_scores(found, expected)
    assert isinstance(result, ScoreReport)
    assert result.rows == len(base) and result.path == out
    counts = expected["recommended_arm"].value_counts()
    assert dict(result.arms) == {a: int(counts.get(a, 0)) for a in (*TREATMENTS, NO_ARM)}
    assert list(result.arms) == [*TREATMENTS, NO_ARM]
    assert result.seconds > 0 and result.customers_per_second > 0
    assert len(lines) == -(-len(base) // chunk_size)
    assert lines[-1] == f"scored {len(base):,} customers"
    assert leftovers(tmp_path) == []


def test_score_file_of_a_missing_feature_names_it_and_writes_nothing(
    tmp_path: Path, fitted: tuple[ScoringModel, pd.DataFrame]
) -> None:
    model, base = fitted
    population = tmp_path / "base.parquet"
    base.drop(columns="tenure_days").to_parquet(population)
    out = tmp_path / "scores.csv"

    with pytest.raises(DataError) as raised:
        score_file(model, population, out)
    message = str(raised.value)
    assert f"{population} has no column 'tenure_days'" in message
    assert "'plan'" in message  # the columns the file has are listed
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_score_file_refuses_another_output_extension_before_reading(
    tmp_path: Path, fitted: tuple[ScoringModel, pd.DataFrame]
) -> None:
    model, _ = fitted
    with pytest.raises(DataError, match=r"--out: .*scores\.xlsx must end in \.csv or \.parquet"):
        score_file(model, tmp_path / "nowhere.parquet", tmp_path / "scores.xlsx")


def test_score_file_failing_in_a_later_chunk_publishes_nothing(
    tmp_path: Path, fitted: tuple[ScoringModel, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    # blocks of 16 kB: the first block says the column is numeric, a later one holds text
    monkeypatch.setattr(chunks, "_CSV_BLOCK", 16 << 10)
    model, base = fitted
    population = tmp_path / "base.csv"
    broken = base.astype({"monetary_180d": object})
    broken.loc[2500, "monetary_180d"] = "twelve"  # text in a numeric feature, chunk 3
    broken.to_csv(population, index=False)
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"yesterday's scores")
    lines: list[str] = []

    with pytest.raises(DataError, match=r"--population: .*base\.csv") as raised:
        score_file(model, population, out, chunk_size=1000, report=lines.append)
    assert "cannot be read: column 'monetary_180d': " in str(raised.value)
    assert "'twelve'" in str(raised.value)
    assert lines == ["scored 1,000 customers", "scored 2,000 customers"]
    assert out.read_bytes() == b"yesterday's scores"
    assert leftovers(tmp_path) == []


def test_score_file_refuses_a_missing_id_naming_its_row(
    tmp_path: Path, fitted: tuple[ScoringModel, pd.DataFrame]
) -> None:
    model, base = fitted
    population = tmp_path / "base.parquet"
    holed = base.copy()
    holed.loc[1234, ID] = None
    holed.to_parquet(population)
    with pytest.raises(DataError, match=r"missing id in column 'customer_id' \(data row 1,235\)"):
        score_file(model, population, tmp_path / "scores.parquet", chunk_size=1000)
    assert not (tmp_path / "scores.parquet").exists()


def test_score_file_of_an_empty_base_writes_the_header(
    tmp_path: Path, fitted: tuple[ScoringModel, pd.DataFrame]
) -> None:
    model, base = fitted
    population = tmp_path / "base.csv"
    base.iloc[:0].to_csv(population, index=False)
    out = tmp_path / "scores.parquet"

    result = score_file(model, population, out)

    assert result.rows == 0
    assert dict(result.arms) == dict.fromkeys((*TREATMENTS, NO_ARM), 0)
    assert pq.read_schema(out).names == model.output_columns()
    assert pq.ParquetFile(out).metadata.num_rows == 0


# --- budgets ---------------------------------------------------------------------------------


def _whole_base_choice(model: ScoringModel, base: pd.DataFrame, **budget: float) -> pd.Series:
    """The budgeted policy applied to the whole base at once (choose_arms on the net values,
    with each arm's spend from the model's own economics)."""
    from uplift.value.policy import choose_arms

    x = model.encoder.transform(base).to_numpy(dtype=float)
    _, net, spend = model._economics(x)
    return choose_arms(
        pd.DataFrame(net, columns=list(model.treatments)),
        spend=pd.DataFrame(spend, columns=list(model.treatments)),
        **budget,
    )


@pytest.mark.parametrize(
    "budget", [{"max_treated": 250}, {"max_spend": 900.0}, {"max_treated": 300, "max_spend": 600.0}]
)
def test_a_budget_is_filled_over_the_whole_file_not_chunk_by_chunk(
    tmp_path: Path, fitted: tuple[ScoringModel, pd.DataFrame], budget: dict[str, float]
) -> None:
    model, base = fitted
    population = tmp_path / "base.parquet"
    base.to_parquet(population, index=False)
    out = tmp_path / "scores.parquet"

    result = score_file(model, population, out, chunk_size=700, **budget)

    found = pd.read_parquet(out)
    expected = _whole_base_choice(model, base, **budget)
    assert found["recommended_arm"].tolist() == expected.tolist()
    # without the budget the policy treats more: the budget binds
    free = model.predict(base)
    treated = found["recommended_arm"] != NO_ARM
    assert treated.sum() < (free["recommended_arm"] != NO_ARM).sum()
    # only the recommended arm changes; every kept recommendation is the free one
    assert (found.loc[treated, "recommended_arm"] == free.loc[treated, "recommended_arm"]).all()
    np.testing.assert_allclose(
        found.filter(like="net_value_").to_numpy(), free.filter(like="net_value_").to_numpy()
    )
    # the limits hold, and the treated are the customers of highest best net value
    best = free.filter(like="net_value_").max(axis=1)
    if "max_treated" in budget:
        assert treated.sum() <= budget["max_treated"]
    if "max_spend" in budget:
        x = model.encoder.transform(base).to_numpy(dtype=float)
        _, _, spend = model._economics(x)
        column = {a: i for i, a in enumerate(model.treatments)}
        picked = found.loc[treated, "recommended_arm"].map(column).to_numpy()
        assert spend[np.flatnonzero(treated), picked].sum() <= budget["max_spend"]
    assert best[treated].min() >= best[~treated & (best > 0)].max()
    assert result.arms[NO_ARM] == int((~treated).sum())


def _partitioned(base: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """``base`` written as a Hive-partitioned Parquet dataset by plan, several files a
    partition; returns the rows in the order the dataset reads them (path order)."""
    import pyarrow.dataset as pads

    pads.write_dataset(
        pa.Table.from_pandas(base, preserve_index=False),
        folder,
        format="parquet",
        partitioning=["plan"],
        partitioning_flavor="hive",
        max_rows_per_file=400,
        max_rows_per_group=400,
        basename_template="part-{i}.parquet",
    )
    return pd.concat(
        pq.read_table(path).to_pandas().assign(plan=path.parent.name.split("=", 1)[1])
        for path in sorted(folder.rglob("*.parquet"))
    ).reset_index(drop=True)[list(base.columns)]


def test_a_partitioned_parquet_dataset_streams_like_one_file(
    tmp_path: Path, fitted: tuple[ScoringModel, pd.DataFrame]
) -> None:
    model, base = fitted
    folder = tmp_path / "base"
    ordered = _partitioned(base, folder)
    assert len(list(folder.rglob("*.parquet"))) > 6  # three partitions, several files each

    got = list(iter_chunks(folder, [ID, "plan", "tenure_days"], 250))
    assert [len(c) for c in got[:-1]] == [250] * (len(got) - 1)
    whole = pd.concat(got, ignore_index=True)
    pd.testing.assert_frame_equal(
        whole.astype({"plan": object}),
        ordered[[ID, "plan", "tenure_days"]].astype({"plan": object}),
    )

    out = tmp_path / "scores.parquet"
    result = score_file(model, folder, out, chunk_size=700)
    assert result.rows == len(base)
    found = pd.read_parquet(out)
    assert found[ID].tolist() == ordered[ID].tolist()  # the dataset's order, every customer
    expected = model.predict(base).set_index(ID).loc[found[ID]].reset_index()
    assert_same_scores(found, expected)


def test_a_dataset_folder_without_parquet_or_a_column_is_a_clear_error(
    tmp_path: Path, fitted: tuple[ScoringModel, pd.DataFrame]
) -> None:
    from uplift.data.sources import read_table

    empty = tmp_path / "empty"
    (empty / "region=north").mkdir(parents=True)
    with pytest.raises(DataError, match=r"--population: the folder .*empty holds no \.parquet"):
        list(iter_chunks(empty, [ID], 10, key="--population"))
    model, base = fitted
    folder = tmp_path / "base"
    _partitioned(base.drop(columns="tenure_days"), folder)
    with pytest.raises(DataError, match=r"has no column 'tenure_days'; expected the columns"):
        score_file(model, folder, tmp_path / "scores.csv")
    assert leftovers(tmp_path) == []
    # the whole-table reader takes the same folder (a population read at once)
    table = read_table("parquet", folder, "population.source.path")
    assert sorted(table[ID]) == sorted(base[ID]) and set(table["plan"]) == set(base["plan"])
