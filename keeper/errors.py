"""Bad input ends in one clear line and exit code 2, never a traceback."""


class UserError(Exception):
    """A problem the user can fix: bad flags, parameters, files or archives."""

    exit_code = 2


def printable(text) -> str:
    """`text` as it is when it prints as one plain line, else its repr: a control character or a
    newline in a name would break the one-line message."""
    text = str(text)
    return text if text.isprintable() else repr(text)


def unknown(what: str, name: str, valid) -> str:
    """"no market named 'sol-perp' (did you mean SOL-PERP?); valid: ..." as one line.

    Close matches are found case-insensitively: a wrong case is the commonest slip. A long
    list of valid names is cut, the close matches having been named first."""
    import difflib

    valid = sorted(set(valid))
    lowered = {v.lower(): v for v in valid}
    key = str(name).lower()
    close = [lowered[key]] if key in lowered else [
        lowered[m] for m in difflib.get_close_matches(key, lowered, n=2, cutoff=0.75)]
    shown = repr(name) if str(name).isprintable() else repr(str(name))
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    listing = ", ".join(map(printable, valid)) or "none"
    if len(listing) > 300:
        listing = listing[:297] + "..."
    return f"no {what} named {shown}{hint}; valid: {listing}"
