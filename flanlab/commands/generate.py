"""`flanlab generate --model M "prompt"`: one greedy answer, through the model's chat template where it has one."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("prompt", help="the prompt text")
    parser.add_argument("--model", required=True, help="preset name, local folder, or hub id")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--no-chat-template", action="store_true", help="feed the prompt as plain text")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda where present)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code (off by default)")


def run(args) -> int:
    from flanlab.models import generate_one, load

    lm = load(args.model, device=args.device, trust_remote_code=args.trust_remote_code)
    if lm.untrained:
        print(f"[{lm.name} is UNTRAINED: random weights, the answer is meaningless]")
    print(generate_one(lm, args.prompt, max_new_tokens=args.max_new_tokens, use_chat_template=not args.no_chat_template))
    return 0
