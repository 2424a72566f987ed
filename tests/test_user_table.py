import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainables.spaces import load_table


def _write(tmp_path, spec: str, table: pa.Table, name="t.parquet"):
    pq.write_table(table, tmp_path / name)
    p = tmp_path / "bench.yaml"
    p.write_text(spec)
    return p


SPEC = """
space: nb201
path: t.parquet
arch: {format: nb201_string, column: arch}
fields: {acc: cifar10/test/200}
extras: {p: params}
"""
A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
B = "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"


def test_user_parquet_table_with_repeats_averaged(tmp_path):
    p = _write(tmp_path, SPEC, pa.table({"arch": [A, A, B], "acc": [90.0, 92.0, 10.0], "p": [1.0, 1.0, 0.1]}))
    t = load_table("nb201", p)
    assert len(t) == 2 and t.fields == ["cifar10/test/200"]
    row = t.rows([t.space.from_string(A)])[0]
    assert t.column("cifar10/test/200")[row] == 91.0 and t.extras["params"][row] == 1.0


def test_genotype_format_on_the_default_space(tmp_path):
    spec = "space: nbgraph\npath: t.csv\narch: {format: genotype, column: g}\nfields: {a: cora/test/final}\n"
    (tmp_path / "t.csv").write_text('g,a\n"0,1,1,1,1",80.5\n"8,0,1,2,3",70.0\n')
    (tmp_path / "bench.yaml").write_text(spec)
    t = load_table("nbgraph", tmp_path / "bench.yaml")
    assert len(t) == 2 and np.isfinite(t.column("cora/test/final")).all()


@pytest.mark.parametrize("spec, table, fault", [
    (SPEC, pa.table({"arch": ["|bogus~0|"], "acc": [1.0], "p": [1.0]}), "row 0"),
    (SPEC.replace("fields: {acc:", "fields: {nope:"), pa.table({"arch": [A], "acc": [1.0], "p": [1.0]}), "missing column"),
    (SPEC.replace("nb201_string", "smiles"), pa.table({"arch": [A], "acc": [1.0], "p": [1.0]}), "arch.format"),
    (SPEC.replace("cifar10/test/200", "cifar10"), pa.table({"arch": [A], "acc": [1.0], "p": [1.0]}), "dataset/split/fidelity"),
    (SPEC + "colour: red\n", pa.table({"arch": [A], "acc": [1.0], "p": [1.0]}), "unknown key"),
])
def test_bad_specs_name_the_fault(tmp_path, spec, table, fault):
    p = _write(tmp_path, spec, table)
    with pytest.raises(ValueError, match=fault):
        load_table("nb201", p)
