"""Names users type and files carry: class names (or ids) to class ids, and class names to file names."""

from __future__ import annotations

from tinymaskgit.errors import ConfigError


def class_ids_from_names(wanted: list[str | int] | None, names: list[str]) -> list[int]:
    """Class names (case-insensitive) or ids -> ids; None -> every class. Unknown ones list the valid names."""
    if not names:
        if wanted:
            raise ConfigError("this model is unconditional (no classes); remove classes=... / class_id=...")
        return []
    if wanted is None:
        return list(range(len(names)))
    lookup = {n.lower(): i for i, n in enumerate(names)}
    ids = []
    for w in wanted:
        if isinstance(w, int) or (isinstance(w, str) and w.isdigit()):
            i = int(w)
            if not 0 <= i < len(names):
                raise ConfigError(f"class id {i} is out of range 0..{len(names) - 1}")
            ids.append(i)
        elif str(w).lower() in lookup:
            ids.append(lookup[str(w).lower()])
        else:
            valid = ", ".join(names)
            raise ConfigError(f"unknown class {w!r}; valid classes: {valid}")
    return ids


def slug(name: str) -> str:
    """A file-name-safe version of a class name."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_") or "class"
