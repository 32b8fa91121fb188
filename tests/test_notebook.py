"""``experiments/walkthrough.ipynb`` executes end to end (nbclient, the venv's ``python3`` kernel), and its HTML
export renders every figure in a real browser.

The notebook's first code cell (tagged ``parameters``) holds its knobs; the test replaces it with small values
(and a run folder under the test's temp folder), runs every cell, and checks what the notebook promises: a
figure after each stage, no error and no warning in any output, every file it wrote inside its run folder,
and a committed copy that carries its outputs. The export (:func:`interp_af.report.notebook.export_html`)
is opened in headless Chromium: as many plotly figures rendered as the notebook drew, and a clean console.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "experiments" / "walkthrough.ipynb"
PLOTLY = "application/vnd.plotly.v1+json"
# one figure after each stage: twins, gap, capture, probes, patching (grid + attribution), steering, SAE (2)
N_FIGURES = 9


def _kernel_name(tmp_path: Path) -> str:
    """The venv's ``python3`` kernel; installed into a temp prefix when the venv has no kernel spec."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" in KernelSpecManager().find_kernel_specs():
        return "python3"
    from ipykernel.kernelspec import install

    install(prefix=str(tmp_path / "jupyter"))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(tmp_path / "jupyter" / "share" / "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    return "python3"


def _figures(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if PLOTLY in o.get("data", {})]


def test_the_committed_notebook_carries_its_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "commit the notebook executed (make_walkthrough.py --execute)"
    assert len(_figures(nb)) == N_FIGURES
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    stderr = [o.text for c in code for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"the committed outputs show stderr the reader must ignore: {stderr[0][:500]}"
    assert NOTEBOOK.stat().st_size < 3_000_000, "outputs too large: figures should be JSON + a PNG, no plotly.js"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    import nbformat
    from nbclient import NotebookClient

    tmp = tmp_path_factory.mktemp("notebook")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    out = tmp / "run"
    params[0].source = (f"LIMIT = 16\nPATCH_QUERIES = 2\nFOLDS = 2\nN_RANDOM = 1\nN_BOOT = 50\n"
                        f"OUT = {str(out)!r}\n")
    cwd = tmp / "cwd"
    cwd.mkdir()
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "INTERP_AF_PNG": "0"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(nb, timeout=300, kernel_name=_kernel_name(tmp),
                                resources={"metadata": {"path": str(cwd)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb, out, cwd


def test_every_stage_runs_and_draws_its_figure(executed):
    nb, out, cwd = executed
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert len(_figures(nb)) == N_FIGURES
    for stage in ("gap", "capture", "probes", "patching", "steering", "sae"):
        assert (out / stage).is_dir(), f"the notebook should save the {stage} results into its run folder"
    html = [o for o in outputs if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert len(html) >= 3, "the gap, capture and probe tables should render as HTML tables"


def test_no_warning_reaches_the_reader_and_nothing_lands_outside_the_run_folder(executed):
    nb, out, cwd = executed
    streams = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"]
    stderr = "".join(o.text for o in streams if o.name == "stderr")
    assert "Warning" not in stderr and "warn" not in stderr.lower(), stderr[-2000:]
    assert "%|" not in stderr, "progress bars in committed outputs: the notebook passes progress=False"
    assert list(cwd.iterdir()) == [], f"files written outside the run folder: {list(cwd.iterdir())}"
    assert not [p for p in out.parent.iterdir() if p.name not in ("run", "cwd", "jupyter")]


def test_the_html_export_renders_every_figure_in_a_browser(executed):
    pytest.importorskip("nbconvert")
    from interp_af.report.notebook import export_html
    from interp_af.testing.browser import check_page, find_chromium

    if find_chromium() is None:
        if os.environ.get("INTERP_AF_REQUIRE_BROWSER") == "1":
            raise RuntimeError("INTERP_AF_REQUIRE_BROWSER=1 but no Chromium: apt-get install chromium-headless-shell")
        pytest.skip("no headless Chromium (apt-get install chromium-headless-shell)")
    nb, out, _ = executed
    page, n = export_html(nb, out / "walkthrough.html")
    assert n == N_FIGURES and (out / "plotly.min.js").is_file()
    res = check_page(page, expected_plots=N_FIGURES)
    assert res.errors == (), res.explain()
    assert res.plots == res.rendered == res.divs == N_FIGURES, res.explain()
    assert res.svgs >= N_FIGURES, res.explain()
    summary = json.loads((out / "gap" / "gap_study.json").read_text())
    assert summary["main"] in page.read_text()
