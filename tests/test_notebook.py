"""The Modified Pix2Pix Colab notebook: clean in the repository, and it runs top to bottom in smoke mode (offline)."""

import json
import pathlib
import re

import nbformat
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "modified_pix2pix_day2night.ipynb"
COLAB_URL = "https://colab.research.google.com/github/tfi2i/tfi2i/blob/main/notebooks/modified_pix2pix_day2night.ipynb"


def test_notebook_is_clean_and_parametrised():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "SMOKE" in tagged[0].source and "TFI2I_NOTEBOOK_SMOKE" in tagged[0].source
    for name in ("STEPS", "IMAGE_SIZE", "DATA_PATH", "WORKDIR", "REPO_URL"):
        assert re.search(rf"^{name} = ", tagged[0].source, re.M), name
    assert not any(re.search(r"^REPO_URL = ", c.source, re.M) for c in code if c is not tagged[0])  # set in one place
    configs = next(c.source for c in code if c.get("id") == "configs")
    assert '"fit_to_run": True' in configs  # a shorter STEPS still decays the learning rate to 0
    text = NOTEBOOK.read_text()
    assert COLAB_URL in text and COLAB_URL in (REPO / "README.md").read_text()
    assert not re.search(r"/(work|home|Users|tmp)/|[A-Z]:\\", "".join(c.source for c in nb.cells)), "absolute path"
    assert not re.search(r"(api[_-]?key|token|password|secret)\s*=", text, re.I)


def test_notebook_runs_in_smoke_mode(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("TFI2I_NOTEBOOK_SMOKE", "1")  # the parameters cell reads it; the kernel inherits the environment
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, so figures are displayed
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors  # execute() raises on the first failing cell; this guards allow_errors changes
    work = tmp_path / "runs" / "modified_pix2pix_notebook"
    table = json.loads((work / "table1.json").read_text())
    assert set(table["ours"]) == {"pix2pix", "modified"}
    for row in table["ours"].values():
        assert row["scale"] == "[0,1]" and row["num_images"] == 4 and 0 <= row["mse"] <= 4 and row["psnr"] > 0
    for png in ("side_by_side.png", "loss_curves.png", "translated.png"):
        assert (work / png).stat().st_size > 0, png
    assert list(work.glob("modified_pix2pix_day2night_demo/export/1/saved_model.pb"))
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "per-pixel accuracy (MSE)" in printed and "paper: original" in printed
    shown = {c.id for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})}
    assert {"grid", "curves", "translate"} <= shown  # the figures are displayed


@pytest.mark.parametrize("paths,mounted", [
    ({"WORKDIR": "/content/drive/MyDrive/runs"}, ["/content/drive"]),  # runs on Drive, data downloaded: mount
    ({"DATA_PATH": "/content/drive/MyDrive/night2day"}, ["/content/drive"]),
    ({}, []),  # nothing on Drive: no mount
])
def test_data_cell_mounts_drive_whenever_a_path_is_on_it(paths, mounted, monkeypatch, tmp_path):
    import os
    import pathlib as pl
    import sys
    import types

    calls = []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=calls.append)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.chdir(tmp_path)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c.source for c in nb.cells if c.get("id") == "data")
    namespace = {"os": os, "pathlib": pl, "IN_COLAB": True, "SMOKE": True, "IMAGE_SIZE": 64,  # smoke: demo data
                 "DATA_PATH": "", "DATA_ROOT": "datasets", "WORKDIR": "runs/nb", **paths}
    exec(compile(cell, "data-cell", "exec"), namespace)  # noqa: S102
    assert calls == mounted


@pytest.fixture(autouse=True)
def _needs_kernel():
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
