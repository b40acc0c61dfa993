"""Recipe-specific command-line flags taken out before `tfi2i.train.main` parses the common ones.

A recipe with ablation variants (or several tasks) accepts ``--variant NAME``
(and e.g. ``--task NAME``) in front of the options every recipe shares::

    variant, rest = split_variant(sys.argv[1:], VARIANTS, default="complete")
    return train.main(lambda: config(variant), build, argv=rest, ...)

Both spellings ``--flag VALUE`` and ``--flag=VALUE`` work; when a flag is
given twice the last one wins (as with argparse). A missing or unknown value
stops the program with a one-line ``error: ...`` listing the valid ones.
"""

from __future__ import annotations

from typing import Callable, Sequence


def split_option(argv: Sequence[str], flag: str, choices: Sequence[str] | None = None, default=None,
                 convert: Callable[[str], object] = str):
    """``(value, remaining argv)``: takes ``flag VALUE`` / ``flag=VALUE`` out of `argv`.

    Args:
      argv: the command line without the program name.
      flag: e.g. ``"--variant"``.
      choices: valid values (None: any).
      default: the value when the flag is absent.
      convert: applied to the text (e.g. ``int``); a ``ValueError`` becomes a usage error.

    Raises:
      SystemExit: the flag has no value, or a value that is not a valid choice.
    """
    valid = f"; valid: {', '.join(choices)}" if choices else ""
    argv, rest, text = list(argv), [], None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == flag:
            if i + 1 >= len(argv) or (argv[i + 1].startswith("--") and choices is not None):
                raise SystemExit(f"error: {flag} needs a value{valid}")
            text, i = argv[i + 1], i + 2
            continue
        if arg.startswith(flag + "="):
            text = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    if text is None:
        return default, rest
    if choices is not None and text not in choices:
        raise SystemExit(f"error: unknown {flag.lstrip('-')} '{text}'{valid}")
    try:
        return convert(text), rest
    except ValueError:
        raise SystemExit(f"error: {flag} {text}: not a valid value") from None


def split_variant(argv: Sequence[str], variants: Sequence[str], default: str):
    """``(variant, remaining argv)`` for ``--variant NAME`` (see `split_option`)."""
    return split_option(argv, "--variant", variants, default)


def peek_option(argv: Sequence[str], flag: str):
    """The value of ``flag VALUE`` / ``flag=VALUE`` in `argv` (last one wins), or None; `argv` is unchanged."""
    value = None
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


__all__ = ["split_option", "split_variant", "peek_option"]
