"""Hand-run sections of docs/performance.md (the soak) survive a regeneration of the page.

A section is the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`. `splice` puts (or
replaces) one before "## Reproduce"; `keep` carries every section of the old page into a newly
rendered one.
"""

import re
from pathlib import Path

BEFORE = "## Reproduce"


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"<!-- {name}:start -->\n.*?<!-- {name}:end -->\n?", re.S)


def splice(doc: str, name: str, body: str) -> str:
    block = f"<!-- {name}:start -->\n{body.rstrip()}\n<!-- {name}:end -->\n"
    pattern = _pattern(name)
    if pattern.search(doc):
        return pattern.sub(lambda _: block, doc, count=1)
    at = doc.find(BEFORE)
    if at < 0:
        return doc.rstrip() + "\n\n" + block
    return doc[:at] + block + "\n" + doc[at:]


def keep(new_doc: str, old_doc: str) -> str:
    for name, body in re.findall(r"<!-- (\w+):start -->\n(.*?)<!-- \1:end -->", old_doc, re.S):
        new_doc = splice(new_doc, name, body)
    return new_doc


def write_keeping(path: Path, new_doc: str) -> None:
    old = path.read_text() if path.exists() else ""
    path.write_text(keep(new_doc, old))
