"""Tag rules (Metaflow's ``tagging_util``) and the canonical form of a tag set."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from .exception import MetaflowTaggingError

MAX_TAG_SIZE = 500
MAX_USER_TAG_SET_SIZE = 50


def validate_tag(tag: object) -> str:
    """Return ``tag`` if it is a valid tag, else raise ``MetaflowTaggingError``.

    Unlike Metaflow (whose local store then crashes), bytes are refused here.
    """
    if isinstance(tag, (bytes, bytearray)):
        raise MetaflowTaggingError(
            f"Tags must be strings, not bytes (got {tag!r}): decode it first, e.g. tag.decode('utf-8')"
        )
    if not isinstance(tag, str):
        raise MetaflowTaggingError(f"Tags must be strings (got {type(tag).__name__})")
    if tag == "":
        raise MetaflowTaggingError("Tags must not be empty string")
    if len(tag) > MAX_TAG_SIZE:
        raise MetaflowTaggingError(f"Tag is too long {len(tag)} > {MAX_TAG_SIZE}")
    try:
        tag.encode("utf-8")
    except UnicodeEncodeError:
        raise MetaflowTaggingError("Tags must be UTF-8 encodable") from None
    return tag


def validate_tags(tags: Iterable[object], existing_tags: Iterable[str] | None = None) -> list[str]:
    """Validate each tag and the 50-tag cap (which only blocks growth)."""
    checked = [validate_tag(t) for t in tags]
    unique = set(checked)
    if len(unique) > MAX_USER_TAG_SET_SIZE and (
        existing_tags is None or len(unique) > len(set(existing_tags))
    ):
        raise MetaflowTaggingError(
            f"Cannot increase size of tag set beyond {MAX_USER_TAG_SET_SIZE}"
        )
    return checked


def tagset_digest(user_tags: Iterable[str], system_tags: Iterable[str]) -> str:
    """Canonical key of a (user tags, system tags) pair."""
    canon = json.dumps([sorted(set(user_tags)), sorted(set(system_tags))], ensure_ascii=False)
    return hashlib.sha1(canon.encode("utf-8", "surrogatepass")).hexdigest()
