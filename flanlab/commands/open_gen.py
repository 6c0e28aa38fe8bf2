"""`flanlab open-gen --model A --model B -o DIR`: answer the open-ended prompt set with two or more models.

Writes DIR/answers.jsonl (appended per batch) and DIR/settings.json; a rerun answers only what is missing.
Rate the answers blind with `flanlab rate DIR`.
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--model", action="append", required=True, metavar="MODEL",
                        help="preset name, local folder or hub id; give two or more (--model A --model B)")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder (created; resumable)")
    parser.add_argument("--prompts", default=None, metavar="FILE",
                        help="your own prompt file (JSONL: id, category, variant, prompt); default: the built-in set")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="answer only N prompts, taken round-robin over the categories")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-chat-template", action="store_true", help="feed prompts as plain text")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda where present)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code (off by default)")


def run(args) -> int:
    from flanlab.rate.opengen import open_gen

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    summary = open_gen(
        args.model, args.out, prompts_file=args.prompts, limit=args.limit, max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size, use_chat_template=not args.no_chat_template, device=args.device,
        trust_remote_code=args.trust_remote_code,
    )
    new = sum(summary["answered"].values())
    old = sum(summary["skipped"].values())
    print(f"[open-gen] {new} new answers, {old} already there -> {summary['out_dir']}/answers.jsonl")
    print(f"[open-gen] rate them blind: flanlab rate {summary['out_dir']}")
    return 0
