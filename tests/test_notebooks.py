"""Every notebook in notebooks/ runs top to bottom, on small settings.

The cell tagged ``parameters`` (papermill's convention) is followed by an injected cell that
overrides some of its names with small values: ``OVERRIDES`` per notebook, else
``DEFAULT_OVERRIDES`` restricted to the names the parameters cell assigns, and in either case
``$JAXAD_NOTEBOOK_PARAMS`` (a JSON object) on top. ``EXPECTED`` names variables a notebook must
end with and the range each must lie in; a probe cell appended at the end reports them.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300
KERNEL = "python3"

DEFAULT_OVERRIDES = {"EPOCHS": 2}
OVERRIDES: dict[str, dict] = {
    "quickstart.ipynb": {"EPOCHS": 3, "DATASET": "breast_cancer", "PRINT_EVERY": 1},
    "rsrae.ipynb": {"EPOCHS": 30, "PRINT_EVERY": 10},
    "efficient_gan.ipynb": {"TRAIN_ROWS": 3000, "TEST_ROWS": 5000, "EPOCHS": 2},
}
# notebook -> {variable: (low, high)}: low < value <= high.
EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "quickstart.ipynb": {"auroc": (0.5, 1.0)},
    "rsrae.ipynb": {"auroc": (0.65, 1.0), "orthogonality_gap": (0.0, 0.1)},
    "efficient_gan.ipynb": {"auroc_fm": (0.0, 1.0)},  # runs end to end; quality: tests/test_efficient_gan.py
}
PROBE_MARK = "__JAXAD_NOTEBOOK_RESULT__"
# notebook -> the file it reads from the data dir ($JAXAD_DATA_DIR, else ../shared/data): skipped
# without it, and given DATA_DIR (if its parameters cell has one) with it.
NEEDS_DATA: dict[str, str] = {"rsrae.ipynb": "20newsgroups/20news-bydate.tar.gz"}


def _data_dir() -> Path:
    env = os.environ.get("JAXAD_DATA_DIR")
    return Path(env).expanduser() if env else NOTEBOOK_DIR.parents[1] / "shared" / "data"


def _assigned_names(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _overrides(name: str, parameters_source: str) -> dict:
    if name in OVERRIDES:
        values = dict(OVERRIDES[name])
        unknown = sorted(set(values) - _assigned_names(parameters_source))
        assert not unknown, f"{name}: overrides {unknown} are not set in its parameters cell"
    else:
        assigned = _assigned_names(parameters_source)
        values = {k: v for k, v in DEFAULT_OVERRIDES.items() if k in assigned}
    if name in NEEDS_DATA and "DATA_DIR" in _assigned_names(parameters_source):
        values["DATA_DIR"] = str(_data_dir())
    values.update(json.loads(os.environ.get("JAXAD_NOTEBOOK_PARAMS", "{}")))
    return values


def _prepare(path: Path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    index = next((i for i, c in enumerate(nb.cells)
                  if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if index is not None:
        values = _overrides(path.name, nb.cells[index].source)
        source = "# injected by tests/test_notebooks.py\n" + "".join(
            f"{k} = {v!r}\n" for k, v in values.items())
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
        nb.cells.insert(index + 1, cell)
    expected = EXPECTED.get(path.name, {})
    if expected:
        names = ", ".join(f"{k!r}: float({k})" for k in expected)
        nb.cells.append(nbformat.v4.new_code_cell(
            f"import json as _json\nprint({PROBE_MARK!r}, _json.dumps({{{names}}}))"))
    return nb


def _probe(nb) -> dict:
    for output in nb.cells[-1].get("outputs", []):
        if output.get("output_type") == "stream":
            for line in output.get("text", "").splitlines():
                if line.startswith(PROBE_MARK):
                    return json.loads(line[len(PROBE_MARK):])
    raise AssertionError("the notebook's result probe printed nothing")


def _errors(nb) -> list[str]:
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
            for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_notebooks_exist():
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS), f"no quickstart in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path: Path):
    """Notebooks are committed without outputs, so diffs stay small and reviewable."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path):
    needed = NEEDS_DATA.get(path.name)
    if needed and not (_data_dir() / needed).is_file():
        pytest.skip(f"{path.name} needs {needed} in the data dir ({_data_dir()}); set JAXAD_DATA_DIR")
    nb = _prepare(path)
    env = dict(os.environ, MPLBACKEND="Agg", TQDM_DISABLE="1")
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error
    assert not _errors(nb), _errors(nb)
    expected = EXPECTED.get(path.name, {})
    if expected:
        got = _probe(nb)
        for key, (low, high) in expected.items():
            assert low < got[key] <= high, f"{path.name}: {key} = {got[key]}, expected in ({low}, {high}]"
