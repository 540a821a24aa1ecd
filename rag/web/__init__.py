"""The chat page: ``engine`` (the index behind it, no UI), ``render`` (its HTML), ``app`` (Gradio)."""
