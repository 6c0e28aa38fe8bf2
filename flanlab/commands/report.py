"""`flanlab report RUN_DIR... -o DIR`: an HTML page (self-contained) and a Markdown twin with plots."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="folders searched recursively for results.json (eval, training, scale or demo runs)")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="where to write index.html, report.md, plots/")
    parser.add_argument("--title", default="flanlab report", help="the page title")
    parser.add_argument("--notes", metavar="FILE.md", help="Markdown placed after the title (a study's commands, "
                        "config and reading): as written in report.md, converted in index.html")


def run(args) -> int:
    from flanlab.report import write_report

    from pathlib import Path

    notes = Path(args.notes).read_text(encoding="utf-8") if args.notes else None
    index = write_report(args.run_dirs, args.out, title=args.title, notes=notes)
    print(f"report: {index.resolve()}")
    print(f"markdown: {(index.parent / 'report.md').resolve()}")
    return 0
