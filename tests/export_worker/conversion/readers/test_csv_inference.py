"""Type inference from raw text, and the type lattice widening walks: pure, no files."""

from __future__ import annotations

import pyarrow as pa
import pytest

from waybill_export_worker.conversion.readers.csv_inference import (
    infer_types,
    join_types,
    wider_type,
)

NULL, INT, FLOAT, BOOL, TEXT = pa.null(), pa.int64(), pa.float64(), pa.bool_(), pa.string()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "-2", "0"], INT),
        (["1", "NA", ""], INT),  # NA markers do not decide
        (["007", "010"], TEXT),  # ids keep their zeros
        (["1.5", "2", "-3e-5"], FLOAT),
        (["+5", "6"], FLOAT),  # arrow's int parser refuses a plus sign
        (["inf", "1.0"], FLOAT),
        (["007", "2.5"], TEXT),  # an id among floats keeps the column text
        (["true", "False", "TRUE"], BOOL),
        (["NA", "null", "None"], NULL),
        (["1", "x"], TEXT),
        (["9223372036854775807"], INT),
        (["9223372036854775808"], TEXT),  # past int64: a float would round it
    ],
)
def test_each_column_takes_the_narrowest_type_that_keeps_every_value(
    values: list[str], expected: pa.DataType
) -> None:
    sample = pa.record_batch({"c": pa.array(values, pa.string())})
    types, _ = infer_types(sample)
    assert types == [expected]


def test_the_markers_the_sample_uses_are_reported_per_file() -> None:
    sample = pa.record_batch(
        {"a": pa.array(["1", "NA", "2"]), "b": pa.array(["x", "#N/A", ""]), "c": ["1", "2", "3"]}
    )
    types, markers = infer_types(sample)
    assert types == [INT, TEXT, INT]
    assert markers == {"NA", "#N/A", ""}


def test_a_wide_sample_is_cut_to_its_cell_budget_but_keeps_a_thousand_rows() -> None:
    rows = ["1"] * 2000 + ["x"]  # the text comes after the cut
    sample = pa.record_batch({f"c{i}": pa.array(rows) for i in range(10)})
    assert infer_types(sample, max_cells=10_000)[0] == [INT] * 10
    assert infer_types(sample, max_cells=None)[0] == [TEXT] * 10


def test_no_columns() -> None:
    assert infer_types(pa.record_batch({})) == ([], set())


@pytest.mark.parametrize(
    ("a", "b", "joined"),
    [
        (NULL, NULL, NULL),
        (NULL, INT, INT),
        (INT, NULL, INT),
        (INT, FLOAT, FLOAT),
        (FLOAT, INT, FLOAT),
        (NULL, BOOL, BOOL),
        (BOOL, INT, TEXT),
        (BOOL, FLOAT, TEXT),
        (INT, TEXT, TEXT),
        (TEXT, NULL, TEXT),
    ],
)
def test_join_holds_the_values_of_both(a: pa.DataType, b: pa.DataType, joined: pa.DataType) -> None:
    assert join_types(a, b) == joined


@pytest.mark.parametrize(
    ("current", "overflow", "wider"),
    [
        (NULL, False, INT),
        (INT, False, FLOAT),
        (INT, True, TEXT),  # an integer past int64: straight to text, never a float
        (FLOAT, False, TEXT),
        (BOOL, False, TEXT),
        (TEXT, False, None),  # nothing is wider than text
        (TEXT, True, None),
    ],
)
def test_a_refused_value_widens_its_column_one_step(
    current: pa.DataType, overflow: bool, wider: pa.DataType | None
) -> None:
    assert wider_type(current, overflow=overflow) == wider
