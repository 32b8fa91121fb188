"""``experiments/walkthrough.ipynb`` executes end to end (nbclient, the venv's ``python3`` kernel).

The notebook's first code cell (tagged ``parameters``) holds its knobs; the test replaces it with small values
so that the organism study finishes in well under two minutes, runs every cell in a temp folder, and checks
what the notebook promises to show: the run folder with report.html and summary.json, a stage table, the
gap and probe DataFrames, and a plotly figure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "experiments" / "walkthrough.ipynb"


def _kernel_name(tmp_path: Path) -> str:
    """The venv's ``python3`` kernel; installed into a temp prefix when the venv has no kernel spec."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" in KernelSpecManager().find_kernel_specs():
        return "python3"
    from ipykernel.kernelspec import install

    install(prefix=str(tmp_path / "jupyter"))
    os.environ["JUPYTER_PATH"] = str(tmp_path / "jupyter" / "share" / "jupyter")
    return "python3"


def test_walkthrough_notebook_runs(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    out = tmp_path / "run"
    params[0].source = (f"LIMIT = 16\nPATCH_LIMIT = 2\nFOLDS = 2\nN_RANDOM = 1\nN_BOOTSTRAP = 100\n"
                        f"STAGES = None\nOUT = {str(out)!r}\n")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    client = NotebookClient(nb, timeout=300, kernel_name=_kernel_name(tmp_path),
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    assert (out / "report.html").is_file()
    summary = json.loads((out / "summary.json").read_text())
    for key in ("free", "paid", "gap", "gap_ci"):
        assert summary["compliance"][key] is not None
    outputs = {i: c.outputs for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    errors = [o for outs in outputs.values() for o in outs if o.output_type == "error"]
    assert not errors
    html = [o for outs in outputs.values() for o in outs
            if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert len(html) >= 3, "stage table, gap frame and probe frame should render as HTML tables"
    figures = [o for outs in outputs.values() for o in outs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert figures, "the notebook should show a plotly figure"
