"""`flanlab models`: the offline presets, whether each is available here, size, licence and kind."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    import json

    from flanlab.models import PRESETS, preset_available, preset_folder

    rows = []
    for preset in PRESETS.values():
        ok, why = preset_available(preset)
        cached = (preset_folder(preset) / "config.json").is_file() if not preset.untrained else False
        rows.append({
            "name": preset.name, "kind": preset.kind, "params": preset.params,
            "available": ok, "status": ("converted, cached" if cached else why) if ok else why,
            "license": preset.license, "description": preset.description,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'preset':<24}{'kind':<9}{'size':<8}{'available':<11}{'license':<16}status")
    for r in rows:
        lic = r["license"] if len(r["license"]) <= 14 else r["license"][:13] + "…"
        print(f"{r['name']:<24}{r['kind']:<9}{r['params']:<8}{'yes' if r['available'] else 'no':<11}{lic:<16}{r['status']}")
    print()
    for r in rows:
        print(f"  {r['name']}: {r['description']}. Licence: {r['license']}.")
    print("\nAlso accepted by --model: a local Hugging Face folder, or a hub id where the hub is reachable.")
    return 0
