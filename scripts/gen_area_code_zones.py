"""Regenerate ``drip/rules/area_code_zones.json`` from phonenumbers' per-exchange zone data.

libphonenumber keeps time zones by number prefix: some area codes have one
entry, others one per exchange (``1850`` -> Central and Eastern, refined by
``1850xxx``). drip needs, for each North American area code, the *set* of
zones a number with that code can be in, so this script folds every prefix
of ``+1 NPA`` and its exchanges into one set per area code and writes it,
with the library version it came from, as JSON.

The generated data is known to be wrong for some overlays (689 is Orlando,
Eastern, but listed Central; 448 overlays 850 but lists Eastern only): those
fixes live in ``drip/rules/area_code_corrections.yaml``, with a source per
row, and are applied on top of this file when drip loads it. Run this script
again after upgrading phonenumbers and review the diff:

    .venv/bin/python scripts/gen_area_code_zones.py
    git diff drip/rules/area_code_zones.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import phonenumbers
from phonenumbers.tzdata import TIMEZONE_DATA

TARGET = Path(__file__).resolve().parent.parent / "drip" / "rules" / "area_code_zones.json"
UNKNOWN = "Etc/Unknown"


def area_code_zones() -> dict[str, list[str]]:
    """Area code (three digits) -> sorted zone names, from every ``1NPA...`` prefix."""
    found: dict[str, set[str]] = defaultdict(set)
    for prefix, zones in TIMEZONE_DATA.items():
        if not prefix.startswith("1") or len(prefix) < 4:
            continue
        code = prefix[1:4]
        found[code].update(z for z in zones if z != UNKNOWN)
    return {code: sorted(zones) for code, zones in sorted(found.items()) if zones}


def main() -> int:
    codes = area_code_zones()
    source = f"phonenumbers {phonenumbers.__version__} (libphonenumber timezone prefix data)"
    rows = [f"  {json.dumps(code)}: {json.dumps(zones)}" for code, zones in codes.items()]
    lines = [
        "{",
        f' "generated_by": {json.dumps("scripts/gen_area_code_zones.py")},',
        f' "source": {json.dumps(source)},',
        ' "area_codes": {',
        ",\n".join(rows),
        " }",
        "}",
    ]
    TARGET.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(codes)} area codes to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
