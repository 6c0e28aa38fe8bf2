"""Chat templates as an evaluation option (`flanlab eval --apply-chat-template`), after lm-evaluation-harness's
--apply_chat_template / --fewshot_as_multiturn / --system_instruction. The default stays the paper's plain prompts.

One transformation: an EvalItem's prompt becomes chat messages, rendered by the tokenizer's chat template with
add_generation_prompt=True, and the engine reads the rendered text as it is (a causal model gets no extra BOS:
the template writes its own special tokens, see Engine(templated=True)).

  messages   [system: the instruction, if given] + [user: prefix + query]    (the whole few-shot prompt, one turn)
  multiturn  lm-eval's --fewshot_as_multiturn layout (its Task.fewshot_context and ContextSampler.get_chat_context,
             as we read lm-eval 0.4), from the prompt's parts (EvalItem.parts, flanlab/eval/fewshot.py):
               system     the --system-instruction and the task description, joined by a blank line (lm-eval's
                          fewshot delimiter); no system turn when both are absent
               user       exemplar i's question, ending with the answer prefix ("Q: ...\nA:")
               assistant  exemplar i's answer (" (D)" -> "(D)"; a CoT rationale ending "So the answer is (D).")
               ...        one user/assistant pair per exemplar
               user       the item's query ("Q: ...\nA:"), then the template's assistant header
             Where it departs from the plain prompt, the plain text's blank-line separators are template
             formatting, so the description and the answers are stripped of surrounding whitespace; the answer
             prefix stays at the end of each user turn, as lm-eval's doc_to_text ends with it (lm-eval's BBH CoT
             user turn ends "A: Let's think step by step.", its assistant turn is the rationale; so here).
             A zero-shot prompt with parts is [system: instruction + description] + [user: query].
             A prompt without parts (a custom Benchmark that gives none, an exemplar of another shape) is the
             single-turn form when it has no exemplars, else a ValueError naming the benchmark, subtask and mode
             (evaluate() checks every prompt before loading the model).
  rank       a direct item's choices are scored right after the assistant's header without their leading
             space ("A", not " A"; lm-eval sets target_delimiter "" under a chat template); samples.jsonl keeps
             the plain choices, its chat_prompt the rendered prompt.
  refused    --fewshot-as-multiturn or --system-instruction without --apply-chat-template (ChatOptions), a
             model whose tokenizer has no chat template (check_template), and a template that refuses the
             messages (e.g. one without a system role): one ValueError line each.

Prefix KV cache: the rendered prompts of a group (the items sharing one plain prefix) get as their new prefix
the longest common string prefix of their rendered texts, so the prefix is a true text prefix of every rendered
prompt by construction (the engine then reuses the common token run, as for plain prompts; under multiturn it
covers the system turn, every exemplar turn and the last user turn's header); a group of one item gets no
prefix. Scoring still reads the plain items (extractors may look at the query); only the engine and the resume
cache key see the rendered prompt (the cache key also holds ChatOptions.settings(), fewshot_as_multiturn with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from flanlab.eval.fewshot import PromptParts
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
    if options.fewshot_as_multiturn and item.parts is not None:
        return multiturn_messages(item.parts, item.query, options.system_instruction)
    no_exemplars = item.shots == 0 or (item.shots is None and not item.prefix)  # None: unknown
    if options.fewshot_as_multiturn and not no_exemplars:
        have = "unknown number of" if item.shots is None else str(item.shots)
        raise ValueError(f"--fewshot-as-multiturn: {item.benchmark}/{item.subtask}/{item.mode} prompts have "
                         f"{have} exemplars in one prefix text, not as separate turns (the benchmark gives no "
                         f"EvalItem.parts for them); run without --fewshot-as-multiturn (the exemplars then stay "
                         f"in the user turn) or with --shots 0")
    system = [{"role": "system", "content": options.system_instruction}] if options.system_instruction else []
    return system + [{"role": "user", "content": item.prompt}]


def multiturn_messages(parts: PromptParts, query: str, system_instruction: str | None) -> list[dict[str, str]]:
    """lm-eval's --fewshot_as_multiturn messages from a prompt's parts: [system: instruction and description] +
    a (user, assistant) pair per exemplar + [user: the query] (see the module docstring)."""
    system = "\n\n".join(text for text in (system_instruction, parts.description.strip()) if text)
    turns = [{"role": "system", "content": system}] if system else []
    for user, answer in parts.shots:
        turns += [{"role": "user", "content": user}, {"role": "assistant", "content": answer.strip()}]
    return turns + [{"role": "user", "content": query}]


def render(tokenizer, item: EvalItem, options: ChatOptions) -> str:
    """The item's prompt through the chat template, ending with the assistant's header. A template that refuses
    the messages (raise_exception in its Jinja, e.g. no system role) is a ValueError saying which."""
    from jinja2.exceptions import TemplateError

    turns = messages(item, options)
    try:
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    except TemplateError as e:
        roles = ", ".join(t["role"] for t in turns)
        raise ValueError(f"--apply-chat-template: the model's chat template refuses the messages of "
                         f"{item.benchmark}/{item.subtask}/{item.mode} ({roles}): {e}") from None


def common_text_prefix(texts: Sequence[str]) -> str:
    """The longest string every text starts with, kept shorter than each (a query is never empty)."""
    first, last = min(texts), max(texts)
    n = 0
    while n < len(first) and first[n] == last[n]:
        n += 1
    return first[: min(n, min(len(t) for t in texts) - 1)]


def templated_items(items: Sequence[EvalItem], tokenizer, options: ChatOptions) -> list[EvalItem]:
    """The items with their prompts rendered (prefix + query == the rendered text) and their rank choices without
    the leading space that joins them to a plain prompt (" A" -> "A": the answer opens the assistant's turn, as
    the exemplar turns' answers do; lm-eval drops its target_delimiter under a chat template too); plain options:
    the items unchanged."""
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
            out[i] = replace(items[i], prefix=prefix, query=rendered[i][len(prefix):], parts=None,
                             choices=tuple(c.lstrip() for c in items[i].choices))
    return out  # type: ignore[return-value]
