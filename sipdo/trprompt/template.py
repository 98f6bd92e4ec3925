"""What the prompt model reads and writes: (query, textual reward) -> a query's prompt.

I/O-free. The same request text is used in training and at inference; it may
carry general instructions (training: the runs' initial prompt; in a run: the
candidate the optimizer refines), which the query's prompt should build on. A base
model with a chat template gets it as one user turn (so an instruct model
writes sensible prompts before any fine-tuning, the paper's round 0), any other
causal LM as plain text followed by a ``Prompt:`` cue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

REQUEST = (
    "Write the system prompt for an AI model that must solve the task below. The prompt "
    "should lead the model to an answer that gets this feedback from the verifier:\n"
    "{reward}\n\n"
    "{instructions}"
    "Task:\n{query}\n\n"
    "Reply with the system prompt only."
)
INSTRUCTIONS = "General instructions the prompt builds on:\n{text}\n\n"
PLAIN_CUE = "\n\nPrompt:\n"
MAX_QUERY_CHARS = 2000
MAX_REWARD_CHARS = 600
MAX_INSTRUCTIONS_CHARS = 1500


def request_text(query: str, reward: str, instructions: str = "") -> str:
    """The request for one query's prompt, conditioned on a textual reward and optional
    general instructions (all clipped: a long task statement, verifier report or
    instructions would crowd out the prompt)."""
    general = instructions.strip()[:MAX_INSTRUCTIONS_CHARS]
    return REQUEST.format(
        reward=reward.strip()[:MAX_REWARD_CHARS],
        instructions=INSTRUCTIONS.format(text=general) if general else "",
        query=query.strip()[:MAX_QUERY_CHARS],
    )


def render_request(tokenizer: Any, query: str, reward: str, instructions: str = "") -> str:
    """The model input up to where the prompt starts (chat template if the tokenizer has one)."""
    text = request_text(query, reward, instructions)
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        return str(rendered)
    return text + PLAIN_CUE


def reward_of(verdict: Mapping[str, Any]) -> str:
    """The textual reward of an outcome: the verifier's feedback, as the loop records it
    for every attempt (so rewards from a recorded run and from a training round read alike)."""
    feedback = str(verdict.get("feedback") or "").strip()
    if feedback:
        return feedback
    return "passed" if verdict.get("passed") else "failed"


def clean_prompt(text: str) -> str:
    """A generated prompt without surrounding quotes, fences or a ``Prompt:`` label."""
    text = text.strip()
    for fence in ("```text", "```"):
        if text.startswith(fence):
            text = text[len(fence) :]
    text = text.removesuffix("```").strip()
    if text.lower().startswith(("prompt:", "system prompt:")):
        text = text.split(":", 1)[1].strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def best_reward(scored: Iterable[tuple[float, str]]) -> str | None:
    """The optimal-reward update: of the rewards with the top score, the most frequent
    (first seen on a tie); None for no rewards. Keeps t* inside the rewards the model
    was trained on, so conditioning on it asks for what the best prompts earned."""
    items = [(score, reward) for score, reward in scored if reward.strip()]
    if not items:
        return None
    top = max(score for score, _ in items)
    counts = Counter(reward for score, reward in items if score == top)
    return max(counts, key=counts.__getitem__)  # the first maximum: first seen on a tie
