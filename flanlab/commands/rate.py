"""`flanlab rate DIR`: blind pairwise human rating of `flanlab open-gen` answers in a local web app.

  flanlab rate DIR                          serve http://127.0.0.1:8765/ (ratings in DIR/ratings.sqlite)
  flanlab rate DIR --export out.csv         write the results without starting a server (.csv or .json)
  flanlab rate DIR --export-ratings r.csv   write every single rating as CSV
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("dir", metavar="DIR", help="an output folder of `flanlab open-gen` (answers.jsonl)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; any other is reachable from other machines)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--db", default=None, metavar="FILE", help="ratings database (default DIR/ratings.sqlite)")
    parser.add_argument("--export", default=None, metavar="FILE",
                        help="write the results (summary .csv, or .json with summary and ratings) and exit")
    parser.add_argument("--export-ratings", default=None, metavar="FILE.csv", help="write every rating as CSV and exit")


def run(args) -> int:
    if args.export or args.export_ratings:
        from flanlab.rate.stats import export

        for path, what in ((args.export, "summary"), (args.export_ratings, "ratings")):
            if path:
                n = export(args.dir, path, db_path=args.db, what=what)
                print(f"[rate] {n} ratings -> {path}")
        return 0
    from flanlab.rate.app import serve

    serve(args.dir, host=args.host, port=args.port, db_path=args.db)  # each request logged; flanlab --quiet: not
    return 0
