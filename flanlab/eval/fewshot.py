"""A few-shot prompt's shared start in parts (EvalItem.parts), so that `flanlab eval --apply-chat-template
--fewshot-as-multiturn` can give each worked exemplar as a (user, assistant) turn pair (flanlab/eval/chat.py
renders them). The plain prompt is unchanged: the benchmarks build it FROM the parts, and the parts concatenate
to it byte for byte:

    EvalItem.prefix == description + user_1 + answer_1 + ... + user_k + answer_k        (PromptParts.text)
    EvalItem.prompt == EvalItem.prefix + EvalItem.query

  description  the task's description with the separator that follows it in the plain prompt
               ("Infer the date from context.\\n\\n"); "" when the prompt has none
  user_i       exemplar i up to where its answer starts: its question and the answer prefix
               ("Q: ...\\nA:", CoT "Q: ...\\nA: Let's think step by step.", MGSM "Frage: ...\\nAntwort:")
  answer_i     the rest of exemplar i with the blank line after it (" (D)\\n\\n")
  query        the item's own part (EvalItem.query), the last user turn; it ends with the same answer prefix,
               so every exemplar's user turn has the shape of the item's

An exemplar that does not start with its user part (a data file's exemplar in another shape, e.g. a BBH CoT
answer not starting "Let's think step by step.") leaves the prompt without parts (`split` gives None): the
plain prompt is the same either way, and --fewshot-as-multiturn refuses such a prompt, naming it.
tests/test_fewshot_parts.py checks the rebuild for every benchmark and mode, and that the plain prompts are
those of before the parts existed (digests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PromptParts:
    """The few-shot part of a prompt (EvalItem.prefix) as description and exemplars; see the module docstring."""

    description: str  # the description and its separator as the plain prompt has them; "" for none
    shots: tuple[tuple[str, str], ...]  # (user part, answer part) per exemplar: the plain exemplar is user + answer
    answer_prefix: str  # what every user part and the item's query end with ("A:", "Answer:", ...)

    def __post_init__(self):
        for n, (user, _) in enumerate(self.shots, 1):
            if not user.endswith(self.answer_prefix):
                raise ValueError(f"exemplar {n}'s user part does not end with the answer prefix "
                                 f"{self.answer_prefix!r}: {user[-60:]!r}")

    @property
    def text(self) -> str:
        """The plain few-shot prefix the parts make (EvalItem.prefix)."""
        return self.description + "".join(user + answer for user, answer in self.shots)


def split(description: str, exemplars: Sequence[tuple[str, str]], answer_prefix: str) -> tuple[str, PromptParts | None]:
    """(the plain prefix, its parts) from the description and each exemplar as (its plain text with the separator
    after it, the user part that text starts with). The prefix is description + the exemplars' texts whatever
    their shape; the parts are None when an exemplar does not start with its user part ending in answer_prefix."""
    prefix = description + "".join(text for text, _ in exemplars)
    if not all(text.startswith(user) and user.endswith(answer_prefix) for text, user in exemplars):
        return prefix, None
    shots = tuple((user, text[len(user):]) for text, user in exemplars)
    return prefix, PromptParts(description, shots, answer_prefix)
