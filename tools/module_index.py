"""Write ``src/hypergraph/_module_index.json``: the built-in modules' descriptions.

``hypergraph modules`` lists the built-ins from this file instead of importing them (and torch);
run this after adding a built-in module or changing its tags, docstring or space::

    .venv/bin/python tools/module_index.py

``tests/test_registry.py`` fails while the file differs from the live classes.
"""

from __future__ import annotations

import json

from hypergraph import registry


def main() -> None:
    """Regenerate the index file."""
    text = json.dumps(registry.build_index(), indent=1, sort_keys=False) + "\n"
    registry.INDEX_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {registry.INDEX_PATH}")


if __name__ == "__main__":
    main()
