#!/usr/bin/env python
"""The chat page: ``python app.py [--docs seeds] [--index index] [--host 127.0.0.1] [--port 7860]``.

Builds the index from the articles on first run (and incrementally when they change), then serves
the page on 127.0.0.1 (never shared publicly). The page lives in ``rag/web/``
(``app.py`` there: the Gradio wiring).
"""
import sys
from pathlib import Path

from rag.web.app import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], base=Path(__file__).resolve().parent))
