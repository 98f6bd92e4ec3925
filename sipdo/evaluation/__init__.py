"""Held-out evaluation: is a prompt better on problems it never saw?

``sipdo eval`` is a thin wrapper over this package; the graph calls it for
held-out tracking (``sipdo run --holdout humaneval:40``). The API::

    from sipdo.evaluation import aevaluate_prompt, evaluate_prompt, holdout_tasks, load_benchmark

    tasks = load_benchmark("humaneval", limit=40)         # list[CodeTask], published order
    tasks = holdout_tasks("humaneval:40")                 # same; or a task-file path
    result = evaluate_prompt(prompt, "local:qwen2.5-coder-0.5b", tasks,
                             sandbox=sandbox, store=run_store,
                             source_run_id=run_id, source_version=version_id)
    result.pass_at_1, result.base_pass_at_1               # full / base grading
    # inside a graph node (already in an event loop):
    result = await aevaluate_prompt(prompt, deps.models["learner"], tasks,
                                    sandbox=await deps.sandbox.get(), store=deps.run_store, ...)

``aevaluate_prompt(prompt, model, tasks, *, sandbox="auto", store=None,
eval_id=None, samples_per_task=1, temperature=None, seed=0, ks=None, jobs=2,
config=None, domain=None, benchmark="tasks", source_run_id=None,
source_version=None, source_iteration=None, progress=None) -> EvalResult``:

- the solve path is the loop's own: ``domain.asolve(task, prompt, ask)``
  (by default ``solve_messages`` -> ``model`` -> ``parse_answer``; a domain may
  hold a multi-turn exchange, every call counted); ``model`` is a spec string, a
  chat model, or None (the learner's default).
- ``tasks`` are ``CodeTask``s (the code domain) or another domain's task dicts
  with that ``domain`` (``domain_benchmark("qa-heldout")``, ``sipdo eval
  --benchmark qa-heldout``): those are graded once, by the domain's own verifier
  through ``sipdo.verifiers.grading``, so ``base`` and ``full`` agree. ``temperature`` defaults to 0
  (greedy) for one sample per task and 0.8 for more; sample ``i`` is asked
  with ``seed + i`` where the model takes a seed. Both are recorded.
- every answer is graded twice (``grading``): ``base`` (the task's own tests
  only; for HumanEval comparable to published numbers) and ``full``
  (``verify_solution``). ``EvalResult.pass_at_k`` has both; the samples they
  judge differently are ``EvalResult.disagreements``.
- a reply with no code for the entry point is a failed sample (status
  ``no_code``); a task that cannot be graded (its reference fails its own
  tests) is listed in ``EvalResult.problems`` and left out of pass@k. The
  model or the sandbox failing as a system raises (``ModelError``,
  ``SandboxError``): what was graded is kept.
- with a ``store`` (a ``RunStore``) each graded sample is stored as soon as it
  is graded (``store.eval_results(eval_id)``), the summary at the end
  (``store.get_eval(eval_id).summary``). ``eval_id`` defaults to a digest of
  the settings (prompt, model, task contents, samples, temperature, seed), so
  the same call after a kill, or a resumed graph node repeating it, grades only
  the samples still missing (and again those whose task could not be graded:
  that may have been a passing fault). ``source_run_id`` / ``source_version``
  (and ``source_iteration``) tie the eval to a run's prompt version:
  ``store.heldout_curve(run_id)`` is that run's held-out curve, oldest first
  (what ``sipdo report`` plots); ``store.list_evals(source_run_id=run_id)`` the
  full records.
- ``progress(event)`` gets ``{"kind": "start", "eval_id", "todo", "kept",
  "estimate"}`` once, then ``{"kind": "sample", "done", "total", "task_id",
  "sample", "status", "base_passed", "full_passed"}`` per graded sample.

``agrade_samples(path, tasks, ...)`` grades a samples file (rows ``{"task_id",
"solution" | "completion"}``) the same two ways without a model; unreadable
rows and unknown task ids become ``problems``, never dropped. Blocking twins:
``evaluate_prompt``, ``grade_samples`` (not inside an event loop).
"""

from __future__ import annotations

from sipdo.evaluation.benchmarks import (
    BENCHMARKS,
    benchmark_domain,
    domain_benchmark,
    holdout_tasks,
    load_benchmark,
    load_tasks,
    read_subset,
    select,
    task_key,
)
from sipdo.evaluation.engine import aevaluate_prompt, evaluate_prompt
from sipdo.evaluation.grading import BaseResult, Grade, agrade, grade_base
from sipdo.evaluation.plan import Estimate, estimate
from sipdo.evaluation.results import (
    Disagreement,
    EvalResult,
    SampleRecord,
    TaskScore,
    Usage,
    summarize,
)
from sipdo.evaluation.samples import agrade_samples, grade_samples

__all__ = [
    "BENCHMARKS",
    "BaseResult",
    "Disagreement",
    "Estimate",
    "EvalResult",
    "Grade",
    "SampleRecord",
    "TaskScore",
    "Usage",
    "aevaluate_prompt",
    "agrade",
    "agrade_samples",
    "benchmark_domain",
    "domain_benchmark",
    "estimate",
    "evaluate_prompt",
    "grade_base",
    "grade_samples",
    "holdout_tasks",
    "load_benchmark",
    "load_tasks",
    "read_subset",
    "select",
    "summarize",
    "task_key",
]
