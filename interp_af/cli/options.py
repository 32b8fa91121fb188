"""The model and query options shared by every stage command, declared once so they read the same everywhere."""

from pathlib import Path
from typing import Annotated, Optional

import typer

Model = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Local model folder or Hub id (default: the built-in model organism).")]
Adapter = Annotated[Optional[str], typer.Option("--adapter", help="PEFT (LoRA) adapter folder or Hub id.")]
Backend = Annotated[str, typer.Option("--backend", help="tl (TransformerLens) or nnsight.")]
Queries = Annotated[Optional[Path], typer.Option(
    "--queries", help="CSV / JSONL / text file of requests (default: AdvBench; the organism's held-out queries "
    "without --model).")]
Variant = Annotated[Optional[str], typer.Option(
    "--variant", help="Prompt variant (see `interp-af prompts --list-variants`); default: 'default', or 'organism' without "
    "--model.")]
Dtype = Annotated[str, typer.Option("--dtype", help="Model dtype: float32, bfloat16 or float16.")]
Device = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, ...")]
