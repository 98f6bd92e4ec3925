"""Tokens per second of the local models, and what a short structured generation costs.

    .venv/bin/python benchmarks/models.py [--models qwen2.5-coder-0.5b ...] [--tokens 96]

For each model: load time, free-text decode speed (output tokens / wall time of
a generation, prompt included) and a schema-constrained task generation (a
small CodeTask-like JSON) with its time, tokens, speed and whether the reply
parsed as JSON before and after the newline repair. Runs on all cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sipdo.plugins.models import ChatLocalLlama, resolve_model
from sipdo.plugins.models.llama import load_llama

CODE_PROMPT = "Write a Python function is_prime(n) with a docstring. Code only."
TASK_SCHEMA = {
    "type": "object",
    "properties": {
        "entry_point": {"type": "string"},
        "prompt": {"type": "string"},
        "reference_solution": {"type": "string"},
        "tests": {"type": "string"},
    },
    "required": ["entry_point", "prompt", "reference_solution", "tests"],
}
TASK_PROMPT = (
    "Create a small Python coding task about reversing the words of a sentence. "
    "Give the function name, a prompt (signature + docstring), a reference solution "
    "and pytest tests that import it from solution. Reply as JSON."
)


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def bench(name: str, tokens: int) -> dict[str, object]:
    """Measure one model; returns the row printed for it."""
    model = resolve_model(f"local:{name}")
    assert isinstance(model, ChatLocalLlama)
    started = time.perf_counter()
    load_llama(Path(model.model_path), n_ctx=model.n_ctx)
    load_s = time.perf_counter() - started
    model = model.model_copy(update={"temperature": 0.0})
    model.invoke("hi", max_tokens=2)  # warm-up

    started = time.perf_counter()
    reply = model.invoke(CODE_PROMPT, max_tokens=tokens)
    text_s = time.perf_counter() - started
    out = reply.usage_metadata["output_tokens"] if reply.usage_metadata else 0

    llama, lock = load_llama(Path(model.model_path), n_ctx=model.n_ctx)
    started = time.perf_counter()
    with lock:
        raw = llama.create_chat_completion(
            messages=[{"role": "user", "content": TASK_PROMPT}],
            response_format={"type": "json_object", "schema": TASK_SCHEMA},
            max_tokens=300,
            temperature=0.0,
        )
    json_s = time.perf_counter() - started
    raw_text = raw["choices"][0]["message"]["content"] or ""
    structured = model.bind(json_schema=TASK_SCHEMA).invoke(TASK_PROMPT, max_tokens=300)
    json_out = int(raw["usage"]["completion_tokens"])
    return {
        "model": name,
        "load_s": round(load_s, 1),
        "text_tok": out,
        "text_tok_s": round(out / text_s, 1),
        "json_s": round(json_s, 1),
        "json_tok": json_out,
        "json_tok_s": round(json_out / json_s, 1),
        "json_finish": raw["choices"][0]["finish_reason"],
        "raw_parses": _parses(raw_text),
        "repaired_parses": _parses(str(structured.content)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    parser.add_argument("--tokens", type=int, default=96)
    args = parser.parse_args()
    for name in args.models:
        print(json.dumps(bench(name, args.tokens)), flush=True)


if __name__ == "__main__":
    main()
