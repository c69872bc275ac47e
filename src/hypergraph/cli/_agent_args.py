"""The arguments ``wandb agent`` passes, read as ``hypergraph train`` options.

A W&B sweep file with ``program: hypergraph`` and ``command: [${program}, train, ${args}]``
makes the agent run ``hypergraph train --model.lr=0.01 --traversal=ivalue ...``. Module
choices (``--traversal=ivalue``) are already ``train`` options; dotted keys become
``--set kind.param=value``. A module-scoped key (``--traversal.ivalue.explore=0.1``) is kept only
when that module is the one chosen for its kind (conditional parameters).
"""

from __future__ import annotations

from hypergraph.kinds import DEFAULTS
from hypergraph.kinds import KIND_NAMES as RUN_KINDS

__all__ = ["translate_agent_args"]


def translate_agent_args(args: list[str]) -> list[str]:
    """``train --kind.param=value`` -> ``train --set kind.param=value``; other args unchanged."""
    at = 0
    while at < len(args) and args[at] != "train":  # only global options may come first
        if args[at] == "--plugins":
            at += 1
        elif not args[at].startswith("-"):
            return args  # another command
        at += 1
    if at >= len(args):
        return args
    at += 1
    head, tail = args[:at], args[at:]
    chosen = dict(DEFAULTS)
    for arg in tail:
        key, eq, value = arg.partition("=")
        if eq and key[2:] in RUN_KINDS and key.startswith("--"):
            chosen[key[2:]] = value
    out: list[str] = []
    for arg in tail:
        key, eq, value = arg[2:].partition("=")
        parts = key.split(".")
        if not (arg.startswith("--") and eq and len(parts) in (2, 3) and parts[0] in RUN_KINDS):
            out.append(arg)
            continue
        if len(parts) == 3:
            if parts[1] != chosen[parts[0]]:
                continue  # a parameter of a module this run did not choose
            key = f"{parts[0]}.{parts[2]}"
        out += ["--set", f"{key}={value}"]
    return head + out
