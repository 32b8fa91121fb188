"""`interp-af capture` end to end on a tiny model: writes a capture, reruns as a no-op, refuses a mismatch."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from interp_af.acts import open_capture
from interp_af.cli import _typer_app
from interp_af.cli.options import parse_ints
from interp_af.errors import InterpAFError


def test_parse_layers():
    assert parse_ints("all", "--layers") == () and parse_ints("", "--layers") == ()
    assert sorted(parse_ints("0, 3,1-2", "--layers")) == [0, 1, 2, 3]
    for bad in ("a", "3-1", "1-"):
        with pytest.raises(InterpAFError, match="--layers"):
            parse_ints(bad, "--layers")


def test_cli_capture(tiny_models, tmp_path):
    qfile = tmp_path / "q.txt"
    qfile.write_text("Explain how photosynthesis works\nWrite a poem about the sea\n")
    out = tmp_path / "cap"
    def args(layers: str = "1", *extra: str) -> list[str]:
        return ["capture", "--model", str(tiny_models["llama"]), "--queries", str(qfile), "--no-benign",
                "--contrasts", "", "--layers", layers, "--positions", "cue,decision-1..decision",
                "--sites", "resid_post,mlp_out", "--out", str(out), *extra]

    runner = CliRunner()
    res = runner.invoke(_typer_app, args("1", "--batch-size", "3"))
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert str(out) in res.output and "compliance" in res.output
    cap = open_capture(out)
    assert cap.n_rows == 4 and cap.layers == (1,) and cap.sites == ("resid_post", "mlp_out")
    assert cap.positions == ("cue", "decision-1", "decision")
    assert set(cap.meta()["arm"]) == {"free", "paid"}
    res = runner.invoke(_typer_app, args("1", "--batch-size", "2"))  # same capture: returned as is
    assert res.exit_code == 0, repr(res.exception)
    res = runner.invoke(_typer_app, args("0"))  # other layers: refused
    assert isinstance(res.exception, InterpAFError) and "--overwrite" in str(res.exception)
    res = runner.invoke(_typer_app, args("0", "--overwrite"))
    assert res.exit_code == 0, repr(res.exception)
    assert open_capture(out).layers == (0,)
