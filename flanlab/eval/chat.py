"""Chat templates as an evaluation option (`flanlab eval --apply-chat-template`), after lm-evaluation-harness's
--apply_chat_template / --fewshot_as_multiturn / --system_instruction. The default stays the paper's plain prompts.

One transformation: an EvalItem's prompt becomes chat messages, rendered by the tokenizer's chat template with
add_generation_prompt=True, and the engine reads the rendered text as it is (a causal model gets no extra BOS:
the template writes its own special tokens, see Engine(templated=True)).

  messages   [system: the instruction, if given] + [user: prefix + query]    (the whole few-shot prompt, one turn)
  multiturn  the exemplars as alternating user/assistant turns. EvalItem gives its few-shot part as one prefix
             string, not exemplar by exemplar, so this is offered only for prompts without exemplars (shots == 0,
             where it is the single-turn form); a prompt with exemplars is a ValueError naming the benchmark.

Prefix KV cache: the rendered prompts of a group (the items sharing one plain prefix) get as their new prefix
the longest common string prefix of their rendered texts, so the prefix is a true text prefix of every rendered
prompt by construction (the engine then reuses the common token run, as for plain prompts); a group of one item
gets no prefix. Scoring still reads the plain items (extractors may look at the query); only the engine and the
resume cache key see the rendered prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from flanlab.eval.spec import EvalItem


@dataclass(frozen=True)
class ChatOptions:
    """How prompts reach the model: plain text (the default) or through the tokenizer's chat template."""

    apply_chat_template: bool = False
    fewshot_as_multiturn: bool = False
    system_instruction: str | None = None

    def __post_init__(self):
        if not self.apply_chat_template and (self.fewshot_as_multiturn or self.system_instruction is not None):
            raise ValueError("--fewshot-as-multiturn and --system-instruction need --apply-chat-template")
        if self.system_instruction is not None and not self.system_instruction.strip():
            raise ValueError("--system-instruction is empty")

    def settings(self) -> dict:
        """The options as results.json records them and the resume cache keys them."""
        return {"apply_chat_template": self.apply_chat_template, "fewshot_as_multiturn": self.fewshot_as_multiturn,
                "system_instruction": self.system_instruction}


def check_template(tokenizer, model_name: str) -> None:
    """A ValueError when the tokenizer has no chat template to apply."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"--apply-chat-template: model {model_name!r} has no chat template "
                         f"(its tokenizer's chat_template is empty); evaluate it with plain prompts")


def messages(item: EvalItem, options: ChatOptions) -> list[dict[str, str]]:
    """The chat messages of one item's prompt (see the module docstring)."""
    no_exemplars = item.shots == 0 or (item.shots is None and not item.prefix)  # None: unknown
    if options.fewshot_as_multiturn and not no_exemplars:
        have = "unknown number of" if item.shots is None else str(item.shots)
        raise ValueError(f"--fewshot-as-multiturn: {item.benchmark}/{item.subtask}/{item.mode} prompts have "
                         f"{have} exemplars in one prefix text, not as separate turns; run without "
                         f"--fewshot-as-multiturn (the exemplars then stay in the user turn) or with --shots 0")
    system = [{"role": "system", "content": options.system_instruction}] if options.system_instruction else []
    return system + [{"role": "user", "content": item.prompt}]


def render(tokenizer, item: EvalItem, options: ChatOptions) -> str:
    """The item's prompt through the chat template, ending with the assistant's header."""
    return tokenizer.apply_chat_template(messages(item, options), tokenize=False, add_generation_prompt=True)


def common_text_prefix(texts: Sequence[str]) -> str:
    """The longest string every text starts with, kept shorter than each (a query is never empty)."""
    first, last = min(texts), max(texts)
    n = 0
    while n < len(first) and first[n] == last[n]:
        n += 1
    return first[: min(n, min(len(t) for t in texts) - 1)]


def templated_items(items: Sequence[EvalItem], tokenizer, options: ChatOptions) -> list[EvalItem]:
    """The items with their prompts rendered (prefix + query == the rendered text); plain options: unchanged."""
    if not options.apply_chat_template:
        return list(items)
    rendered = [render(tokenizer, it, options) for it in items]
    groups: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(it.prefix, []).append(i)
    out: list[EvalItem | None] = [None] * len(items)
    for members in groups.values():
        prefix = common_text_prefix([rendered[i] for i in members]) if len(members) > 1 else ""
        for i in members:
            out[i] = replace(items[i], prefix=prefix, query=rendered[i][len(prefix):])
    return out  # type: ignore[return-value]
