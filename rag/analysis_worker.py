"""The background spaCy worker of an index build (``rag.analysis.AnalysisJob``).

    python -m rag.analysis_worker IN.json OUT.json PARENT_PID

IN holds ``[{"doc": Document.to_dict(), "source": text}, ...]``; OUT gets
``analyze_documents``'s rows by document id. The worker ends itself when the parent process
is gone (a build killed with SIGKILL must not leave it behind).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path


def exit_with_parent(parent: int, every: float = 0.5) -> None:
    """End this process as soon as ``parent`` is no longer its parent."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main(argv: list[str]) -> int:
    src, dst, parent = argv
    exit_with_parent(int(parent))
    from .analysis import analyze_documents
    from .schema import Document

    items = json.loads(Path(src).read_text(encoding="utf-8"))
    docs = [Document.from_dict(it["doc"], source=it["source"]) for it in items]
    rows = analyze_documents(docs)
    tmp = Path(dst).with_suffix(".tmp")
    tmp.write_text(json.dumps(rows), encoding="utf-8")
    os.replace(tmp, dst)  # the parent never reads half a file
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
