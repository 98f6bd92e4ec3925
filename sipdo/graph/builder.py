"""``create_sipdo_graph``: resolve models and plugins, wire the nodes, compile."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import partial
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.types import Overwrite

from sipdo.errors import PluginError
from sipdo.graph import routing
from sipdo.graph.approve import approve
from sipdo.graph.budget import Budget
from sipdo.graph.checker import checker
from sipdo.graph.compiled import SipdoGraph
from sipdo.graph.events import emit
from sipdo.graph.generator import generator
from sipdo.graph.holdout import Holdout, resolve_holdout
from sipdo.graph.learner import learner
from sipdo.graph.lifecycle import finish, setup
from sipdo.graph.optimizer import MAX_BATCHES, optimizer
from sipdo.graph.promote import promote
from sipdo.graph.runtime import Deps, LazySandbox
from sipdo.graph.state import InputState, OutputState, SipdoState, Usage, add_usage_delta
from sipdo.graph.verifier import verifier
from sipdo.plugins.domains.base import Domain
from sipdo.plugins.models import ModelSpec, resolve_model
from sipdo.plugins.optimizers.base import Strategy
from sipdo.plugins.optimizers.demos import DemoSettings
from sipdo.plugins.optimizers.gates import PromotionPolicy, resolve_gate
from sipdo.plugins.registry import DEFAULT_STRATEGY, load
from sipdo.sandbox import Sandbox

P = TypeVar("P")
Node = Callable[[SipdoState, Deps], Awaitable[dict[str, Any]]]


def resolve_plugin(group: str, value: Any, protocol: type[P]) -> P:
    """A plugin instance from a registered name (class or instance) or an instance."""
    obj = load(group, value) if isinstance(value, str) else value
    if isinstance(obj, type):
        try:
            obj = obj()
        except TypeError as exc:
            raise PluginError(f"{group} plugin {obj.__name__} needs arguments: {exc}") from exc
    if not isinstance(obj, protocol):
        raise PluginError(f"{obj!r} does not implement {protocol.__name__}")
    return obj


def _run_sync(coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run a node coroutine from sync code, keeping LangGraph's context variables."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    ctx = contextvars.copy_context()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = ctx.run(asyncio.run, coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _node(fn: Node, deps: Deps) -> RunnableLambda[SipdoState, dict[str, Any]]:
    """A node usable from ``invoke`` and ``ainvoke``; reports budget use after each step."""

    async def afunc(state: SipdoState) -> dict[str, Any]:
        update = await fn(state, deps)
        if "budget_used" in update:
            emit(
                "budget",
                used=total_usage(state, update["budget_used"]),
                limits=deps.budget.limits(),
            )
        return update

    def func(state: SipdoState) -> dict[str, Any]:
        return _run_sync(afunc(state))

    return RunnableLambda(func, afunc=afunc, name=fn.__name__)


def total_usage(state: SipdoState, update: Any) -> Usage:
    """The run's usage once a node's ``budget_used`` update (a delta, or a fresh start)
    is applied."""
    if isinstance(update, Overwrite):
        return update.value  # type: ignore[no-any-return]
    return add_usage_delta(state.get("budget_used"), update)


def _role_model(
    spec: ModelSpec | None, learner_model: BaseChatModel, role: str, *, shared: bool
) -> BaseChatModel:
    """The role's own model; an open role shares the learner's when one was given,
    else takes the role's default (``default_model_spec``)."""
    if spec is None and shared:
        return learner_model
    return resolve_model(spec, role=role)


def create_sipdo_graph(
    model: ModelSpec | None,
    *,
    generator_model: ModelSpec | None = None,
    checker_model: ModelSpec | None = None,
    optimizer_model: ModelSpec | None = None,
    domain: str | Domain = "code",
    strategy: str | Strategy = DEFAULT_STRATEGY,
    sandbox: Sandbox | None = None,
    store: BaseStore | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    name: str = "sipdo",
    run_store: Any = None,
    budget: Budget | None = None,
    approve_prompts: bool = False,
    gate: str | PromotionPolicy = "statistical",
    seed: int = 0,
    context_schema: type[Any] | None = None,
    allow_specific: bool = False,
    holdout: str | Sequence[Any] | Holdout | None = None,
    stop_on_holdout_drop: bool = False,
    prompt_model: Any = None,
    demonstrations: int | DemoSettings = 0,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The SIPDO loop as a compiled LangGraph graph (run it alone or as a subgraph).

    A role model left as None is the learner's model; with ``model=None`` too,
    every role takes its own default (``sipdo.plugins.models.default_model_spec``:
    role env vars, else OpenAI with a key, else the offline local models). ``domain`` / ``strategy``
    are registered names (``UnknownPluginError`` lists the known ones) or
    instances. ``sandbox=None`` opens ``open_sandbox("auto")`` at first use.
    ``store``, ``checkpointer`` and ``name`` go straight to ``.compile()``;
    ``run_store`` (a ``sipdo.store.RunStore``) records the run under
    ``configurable.run_id`` or ``thread_id``. Input: ``{"prompt", "seed_tasks"?}``.
    ``gate`` is the promotion policy (``strict``, ``statistical``, ``pareto`` or a
    ``PromotionPolicy``) the graph applies to every strategy's candidates; ``seed``
    seeds the strategies' randomness (same seed, same run with deterministic models).
    ``context_schema`` goes to the ``StateGraph`` (LangGraph Server shows it as the
    graph's configuration form; ``sipdo.serve`` passes ``ServeConfig``).
    A candidate whose instructions are specific to the training tasks (they name
    or paraphrase a task's function, repeat a test value, carry a worked example
    of one function) is never promoted unless ``allow_specific``: such rules
    rarely hold on unseen problems, and a weak optimizer writes many of them.
    ``holdout`` (``"humaneval:40"``, a task file, a list of tasks or a ``Holdout``)
    grades the initial prompt and every promoted version on tasks the loop never
    sees (``state["holdout"]``); ``stop_on_holdout_drop`` ends the run when a
    promoted version scores below the best held-out number so far.
    ``prompt_model`` (a directory ``sipdo train-prompt-model`` wrote, or a
    ``sipdo.trprompt.PromptModel``) writes the learner's system prompt for each
    task, conditioned on the task, its optimal textual reward and the prompt
    version as general instructions (which the optimizer goes on refining); its
    generations count as calls of the ``prompt_model`` role. A directory is
    loaded here, so a missing or damaged one fails before the run starts.
    ``demonstrations`` (a count, e.g. 3, or ``DemoSettings(limit, token_budget)``)
    lets candidates carry up to that many verified demonstrations — learner answers
    that passed the sandbox on verified training tasks, shown to the solver as
    earlier turns (``state["demonstrations"]`` is the pool); 0 (default): none.
    """
    from sipdo.trprompt.writer import open_prompt_model

    writer = open_prompt_model(prompt_model, seed=seed)
    learner_model = resolve_model(model, role="learner")
    shared = model is not None
    deps = Deps(
        models={
            "learner": learner_model,
            "generator": _role_model(generator_model, learner_model, "generator", shared=shared),
            "checker": _role_model(checker_model, learner_model, "checker", shared=shared),
            "optimizer": _role_model(optimizer_model, learner_model, "optimizer", shared=shared),
        },
        domain=resolve_plugin("sipdo.domains", domain, Domain),  # type: ignore[type-abstract]
        strategy=resolve_plugin("sipdo.optimizers", strategy, Strategy),  # type: ignore[type-abstract]
        sandbox=LazySandbox(sandbox),
        budget=budget if budget is not None else Budget(),
        run_store=run_store,
        approve_prompts=approve_prompts,
        gate=resolve_gate(gate),
        seed=seed,
        allow_specific=allow_specific,
        holdout=resolve_holdout(holdout, stop_on_drop=stop_on_holdout_drop),
        prompt_model=writer,
        demos=demonstrations
        if isinstance(demonstrations, DemoSettings)
        else DemoSettings(limit=int(demonstrations)),
    )
    if deps.holdout is not None:
        from sipdo.evaluation.engine import eval_tasks

        # The held-out tasks must be the domain's (qa-heldout for qa, code tasks for code):
        # ConfigurationError before the run otherwise.
        tasks = tuple(eval_tasks(deps.holdout.tasks, deps.domain))
        deps.holdout = dataclasses.replace(deps.holdout, tasks=tasks)
    maxd = deps.domain.max_difficulty

    def route(fn: Callable[..., str]) -> Callable[[SipdoState], str]:
        return partial(fn, budget=deps.budget, max_difficulty=maxd)

    graph = StateGraph(
        SipdoState,
        context_schema=context_schema,
        input_schema=InputState,
        output_schema=OutputState,
    )
    for fn in (setup, learner, generator, checker, verifier, optimizer, promote, approve, finish):
        graph.add_node(fn.__name__, _node(fn, deps))
    graph.add_edge(START, "setup")
    graph.add_edge("setup", "learner")
    graph.add_conditional_edges(
        "learner", route(routing.after_learner), ["generator", "optimizer", "finish"]
    )
    graph.add_conditional_edges(
        "generator", route(routing.after_generator), ["checker", "optimizer", "generator", "finish"]
    )
    graph.add_conditional_edges("checker", route(routing.after_checker), ["verifier", "finish"])
    graph.add_conditional_edges(
        "verifier",
        route(routing.after_verifier),
        ["learner", "optimizer", "generator", "finish"],
    )
    graph.add_conditional_edges(
        "optimizer", route(routing.after_optimizer), ["optimizer", "promote", "finish"]
    )
    graph.add_conditional_edges(
        "promote",
        route(routing.after_promote),
        ["approve", "optimizer", "generator", "finish"],
    )
    graph.add_conditional_edges(
        "approve", route(routing.after_approve), ["generator", "optimizer", "finish"]
    )
    graph.add_edge("finish", END)
    compiled = graph.compile(checkpointer=checkpointer, store=store, name=name)
    compiled.__class__ = SipdoGraph  # keeps its own recursion limit inside a parent graph
    return compiled.with_config(recursion_limit=recursion_limit(deps.budget))


def recursion_limit(budget: Budget) -> int:
    """Graph steps a full run may take: per iteration generator, checker, verifier,
    learner and per optimizer step up to ``MAX_BATCHES`` batches, promote and approve;
    plus setup, the seed pass and finish."""
    return 10 + budget.iterations * (6 + (MAX_BATCHES + 3) * budget.max_refinements)
