"""Serving models: `dfseg serve` (an HTTP inference server with dynamic micro-batching) and
`dfseg app` (a web UI). FastAPI, uvicorn and Gradio are imported only here, lazily (the `serve`
and `app` extras)."""
