"""``interp-af prompts`` through the real entry point (errors become one line and exit status 2)."""

import json
import sys

import pytest

from interp_af.cli import app
from interp_af.setting import tokenizer as tokmod


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["interp-af", *args])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_prompts_shows_tokens_positions_and_summary(monkeypatch, capsys, tiny_models, tmp_path):
    out_json = tmp_path / "summary.json"
    code, out, err = _run(monkeypatch, capsys, "prompts", "--model", str(tiny_models["llama"]), "--limit", "4",
                          "--no-benign", "--tokens", "--around", "1", "--out", str(out_json))
    assert code == 0, err
    assert "named positions" in out and "decision" in out and "cue, cue_end" in out and "≠" in out
    assert "4 queries, 4 aligned twins, 0 misaligned" in out
    saved = json.loads(out_json.read_text())
    assert saved["twins"]["n"] == 4 and saved["twins"]["n_aligned"] == 4


def test_prompts_reports_misaligned_variant(monkeypatch, capsys, tiny_models):
    code, out, err = _run(monkeypatch, capsys, "prompts", "--model", str(tiny_models["qwen2"]), "--variant",
                          "tag-absent", "--no-benign", "--limit", "3")
    assert code == 0, err
    assert "not aligned" in out and "misaligned (3)" in out and "no cue" in out


def test_list_variants(monkeypatch, capsys):
    code, out, _ = _run(monkeypatch, capsys, "prompts", "--list-variants")
    assert code == 0 and "three-tiers" in out and "inverted-cue" in out and "file:PATH" in out


@pytest.mark.parametrize("args, needle", [
    (("--variant", "bogus"), "unknown variant 'bogus'"),
    (("--queries", "/nonexistent/q.csv"), "does not exist"),
    (("--system-prompt", "/nonexistent/p.txt"), "does not exist"),
])
def test_bad_input_is_one_line(monkeypatch, capsys, tiny_models, args, needle):
    code, out, err = _run(monkeypatch, capsys, "prompts", "--model", str(tiny_models["gpt2"]), *args)
    assert code == 2
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1


def test_prompt_file_without_placeholder(monkeypatch, capsys, tiny_models, tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("You are a [bold]verbatim[/bold] assistant {not a placeholder}.")
    bad.write_text("System text.\n### USER TURN ###\n<INPUT>{tier}</INPUT>\n")
    code, out, err = _run(monkeypatch, capsys, "prompts", "--model", str(tiny_models["gemma2"]), "--system-prompt",
                          str(good), "--no-benign", "--limit", "2", "--casing", "title")
    assert code == 0, err
    assert "2 queries, " in out and "file:" in out and "True" in out
    code, out, err = _run(monkeypatch, capsys, "prompts", "--model", str(tiny_models["gemma2"]), "--system-prompt", str(bad))
    assert code == 2 and str(bad) in err and "{request}" in err and err.count("\n") == 1


def test_default_tokenizer_is_trained_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERP_AF_CACHE", str(tmp_path / "cache"))
    tok, note = tokmod.default_tokenizer()
    assert "trained a Llama-3-style BPE" in note and tok.chat_template
    tok2, note2 = tokmod.default_tokenizer()
    assert "cached" in note2 and tok2.get_vocab() == tok.get_vocab()


def test_without_a_model_the_default_target_renders(monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, "prompts", "--limit", "2")
    assert code == 0, err
    assert "target organism" in out and "2 queries, 2 aligned twins" in out
